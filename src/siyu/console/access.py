"""Who may open a console page. A page outside the viewer's role answers 404, like an
out-of-scope record, so the console does not reveal what exists."""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse
from django.shortcuts import resolve_url

from siyu.org.models import Staff
from siyu.org.selectors import viewer_for

ANY_ROLE = frozenset(Staff.Role.values)
LEADS = frozenset({Staff.Role.ADMIN, Staff.Role.MANAGER})
ADMINS = frozenset({Staff.Role.ADMIN})


def role_required(roles: frozenset[str]) -> Callable:
    """Log-in required; then the viewer's role must be one of `roles`, else 404.

    An htmx request from a logged-out browser (the session expired) is told to load the login
    page in full instead of having it swapped into a fragment.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if request.headers.get("HX-Request") == "true":
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = resolve_url(settings.LOGIN_URL)
                    return response
                return redirect_to_login(request.get_full_path())
            if viewer_for(request.user).role not in roles:
                raise Http404
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
