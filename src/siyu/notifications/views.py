"""Console pages for the notification centre: the bell's count, the list, mark read."""

from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from siyu.console.access import ANY_ROLE, role_required
from siyu.notifications.models import Notification
from siyu.notifications.selectors import notification_list, notification_unread_count
from siyu.notifications.services import notification_mark_read, notifications_mark_all_read
from siyu.org.selectors import viewer_for

LIST_SIZE = 50


@role_required(ANY_ROLE)
def bell(request):
    """The top bar's unread count, polled by htmx: one indexed COUNT."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    unread = notification_unread_count(staff_id=viewer_for(request.user).staff_id)
    return TemplateResponse(request, "notifications/_bell.html", {"unread": unread})


@role_required(ANY_ROLE)
def notification_index(request):
    staff_id = viewer_for(request.user).staff_id
    rows = list(notification_list(staff_id=staff_id)[:LIST_SIZE])
    context = {
        "notifications": rows,
        "unread": sum(1 for n in rows if n.read_at is None),
        "has_staff": staff_id is not None,
        "list_size": LIST_SIZE,
    }
    return TemplateResponse(request, "notifications/list.html", context)


@require_POST
@role_required(ANY_ROLE)
def notification_open(request, pk: int):
    """Mark one read and go where it points; someone else's answers 404 like a missing one."""
    staff_id = viewer_for(request.user).staff_id
    target = (
        Notification.objects.filter(pk=pk, staff_id=staff_id).values_list("url", flat=True).first()
    )
    if staff_id is None or target is None:
        raise Http404
    notification_mark_read(staff_id=staff_id, notification_id=pk)
    # Only local links: a notification's url comes from code, but never bounce off-site.
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect("notifications:list")


@require_POST
@role_required(ANY_ROLE)
def notification_read_all(request):
    staff_id = viewer_for(request.user).staff_id
    if staff_id is not None:
        notifications_mark_all_read(staff_id=staff_id)
    return redirect("notifications:list")
