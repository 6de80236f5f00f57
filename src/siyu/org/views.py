"""The organisation page: stores and staff. Admins see all, managers their store."""

from django.template.response import TemplateResponse

from siyu.console.access import LEADS, role_required
from siyu.org.selectors import staff_visible_to, stores_visible_to, viewer_for


@role_required(LEADS)
def org_index(request):
    viewer = viewer_for(request.user)
    return TemplateResponse(
        request,
        "org/index.html",
        {"stores": stores_visible_to(viewer), "staff": staff_visible_to(viewer)},
    )
