"""The hot leads page: one staff member's customers, warmest first."""

from django.conf import settings
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from siyu.console.access import ANY_ROLE, role_required
from siyu.leads.selectors import hot_leads
from siyu.org.selectors import staff_visible_to, viewer_for

# Far beyond any real list; it keeps OFFSET and ids inside a bigint.
MAX_NUMBER = 10**9


def _positive_int(raw: str | None, default: int | None) -> int | None:
    if raw in (None, ""):
        return default
    value = int(raw)  # ValueError is the caller's 400
    if not 1 <= value <= MAX_NUMBER:
        raise ValueError
    return value


@role_required(ANY_ROLE)
def lead_list(request):
    """Staff see their own; a manager picks anyone in their store, an admin anyone."""
    viewer = viewer_for(request.user)
    try:
        staff_id = _positive_int(request.GET.get("staff"), viewer.staff_id)
        page = _positive_int(request.GET.get("page"), 1)
    except ValueError:
        context = {"error": _("“staff” and “page” must be positive whole numbers.")}
        return TemplateResponse(request, "leads/list.html", context, status=400)
    choices = list(staff_visible_to(viewer)) if viewer.is_admin or viewer.is_manager else []
    # Someone else's leads: only a staff member this viewer may see; others 404.
    if staff_id not in (viewer.staff_id, None) and staff_id not in {s.pk for s in choices}:
        raise Http404
    result = hot_leads(staff_id=staff_id, page=page) if staff_id is not None else None
    context = {
        "result": result,
        "staff_id": staff_id,
        "choices": choices,
        "window_days": settings.SIYU_LEADS_WINDOW_DAYS,
        "half_life_days": settings.SIYU_LEADS_HALF_LIFE_DAYS,
    }
    return TemplateResponse(request, "leads/list.html", context)
