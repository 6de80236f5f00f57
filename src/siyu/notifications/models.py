from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.customers.models import Customer
from siyu.org.models import Staff


class Notification(models.Model):
    """Something a staff member should know about, e.g. a customer opened their material.

    While unread, a repeat of the same (staff, key) bumps `count` on the one row instead of
    adding another, so ten opens of one brochure are one line "opened 10 times".
    """

    staff = models.ForeignKey(
        Staff, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    kind = models.SlugField(_("kind"), max_length=40)
    key = models.CharField(_("key"), max_length=200)
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    url = models.CharField(_("link"), max_length=500, blank=True)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    count = models.PositiveIntegerField(_("count"), default=1)
    created_at = models.DateTimeField(_("created"))
    updated_at = models.DateTimeField(_("updated"))
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        constraints = [
            # The upsert's conflict target: one unread row per (staff, key).
            models.UniqueConstraint(
                fields=["staff", "key"],
                condition=models.Q(read_at__isnull=True),
                name="notification_unread_key_uniq",
            ),
        ]
        indexes = [
            # The bell's unread COUNT and the list (unread first, newest first).
            models.Index(fields=["staff", "read_at", "-updated_at"], name="notification_staff_idx"),
            # Merges and customer deletes find rows by customer.
            models.Index(fields=["customer"], name="notification_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.staff_id}: {self.title}"
