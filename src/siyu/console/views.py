from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from siyu.customers.selectors import pool_stats
from siyu.org.selectors import viewer_for

login = auth_views.LoginView.as_view(
    template_name="console/login.html", redirect_authenticated_user=True
)
logout = auth_views.LogoutView.as_view()


@login_required
def home(request):
    """The pool at a glance, in the viewer's scope. A login without a staff role sees a note."""
    viewer = viewer_for(request.user)
    if not viewer.role:
        return TemplateResponse(request, "console/home.html", {"stats": None})
    stats = pool_stats(viewer)
    by_channel = [
        {"name": row["channel"] or _("No source channel"), "value": row["count"]}
        for row in stats.by_channel
    ]
    return TemplateResponse(
        request, "console/home.html", {"stats": stats, "by_channel": by_channel}
    )
