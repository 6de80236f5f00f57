from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.customers.models import Customer


class EventType(models.Model):
    """A known kind of behaviour event: its label and what its properties mean.

    Events of unknown types are kept too; they show up here unlabelled for an admin to name.
    """

    name = models.SlugField(_("name"), max_length=60, unique=True)
    label = models.CharField(_("label"), max_length=100, blank=True)
    description = models.TextField(_("description"), blank=True)
    # {"property name": "what it means"}, shown next to the segment builder's property filters
    properties = models.JSONField(_("properties"), default=dict, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("event type")
        verbose_name_plural = _("event types")

    def __str__(self) -> str:
        return self.label or self.name


class Event(models.Model):
    """Something a customer did at a touchpoint: viewed a material, joined a group, checked in."""

    # No single-column indexes: the two composite ones below lead with the customer and with
    # the type; at tens of millions of rows each spare index slows every insert.
    # No foreign key in the database: PostgreSQL would check it row by row at every commit,
    # a third of an ingested batch's insert. Ingestion finds each customer by identity and
    # locks it FOR KEY SHARE until it commits, as the check would; deletes go through the ORM,
    # which cascades and, first, waits for such batches (events.signals). See docs/events.md.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    type = models.SlugField(_("type"), max_length=60, db_index=False)
    occurred_at = models.DateTimeField(_("occurred at"))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    source = models.CharField(_("source"), max_length=40, blank=True)
    # A sender's key for exactly-once ingestion; a repeated key is ignored. Unique through a
    # constraint in Meta, not unique=True, which on PostgreSQL adds a second index (for LIKE
    # queries nobody runs) that every insert would also maintain. NULL, not "", is "no key":
    # any number of events may have none.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="event_idempotency_key_unique")
        ]
        indexes = [
            models.Index(
                fields=["customer", "type", "occurred_at"], name="event_customer_type_idx"
            ),
            # With the customer in the index, "who did T in the last N days" is read from the
            # index alone, and a segment hashes those customers once instead of probing the
            # per-customer index for every candidate (benchmarks/segments.py).
            models.Index(
                fields=["type", "occurred_at", "customer"], name="event_type_at_customer_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} @ {self.occurred_at:%Y-%m-%d %H:%M}"
