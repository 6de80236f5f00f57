"""Full page or partial: the one place that decides (like NetBox's `utilities/htmx.py`)."""

from collections.abc import Callable
from functools import wraps

from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers


def is_htmx_partial(request) -> bool:
    """True for an htmx request that swaps part of a page.

    A history restore (the browser's cache missed) and a boosted navigation both want the whole
    page, so they get it.
    """
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-History-Restore-Request") != "true"
        and headers.get("HX-Boosted") != "true"
    )


def for_htmx(*, partial: str) -> Callable:
    """Render `partial` instead of the view's full-page template when htmx asks for a part.

    The view returns a TemplateResponse for the full page; its context must also serve the
    partial, which the full page includes.
    """

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            response = view(request, *args, **kwargs)
            if isinstance(response, TemplateResponse):
                if is_htmx_partial(request):
                    response.template_name = partial
                patch_vary_headers(response, ["HX-Request"])
            return response

        return wrapped

    return decorator
