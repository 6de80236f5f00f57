"""Reads: the bell's unread count and the staff member's recent notifications."""

from django.db.models import F, QuerySet

from siyu.notifications.models import Notification


def notification_unread_count(*, staff_id: int | None) -> int:
    """One indexed COUNT; a login without a staff record has none."""
    if staff_id is None:
        return 0
    return Notification.objects.filter(staff_id=staff_id, read_at__isnull=True).count()


def notification_list(*, staff_id: int | None) -> QuerySet[Notification]:
    """This staff member's notifications, unread first, then the most recently updated."""
    if staff_id is None:
        return Notification.objects.none()
    return (
        Notification.objects.filter(staff_id=staff_id)
        .select_related("customer")
        .order_by(F("read_at").desc(nulls_first=True), "-updated_at", "-id")
    )
