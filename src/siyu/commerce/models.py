from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from siyu.customers.models import Channel, Customer


class Order(models.Model):
    """An order from any channel, keyed by (channel, the platform's order id)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("awaiting payment")
        PAID = "paid", _("paid")
        SHIPPED = "shipped", _("shipped")
        COMPLETED = "completed", _("completed")
        CANCELLED = "cancelled", _("cancelled")
        REFUNDED = "refunded", _("refunded")
        PARTIALLY_REFUNDED = "partially_refunded", _("partially refunded")

    # No single-column index on channel or customer: order_unique_ref (channel, order number)
    # and order_customer_paid_time_idx (customer, time) begin with them and serve the same
    # lookups, and every index costs each imported order.
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    external_id = models.CharField(_("order number"), max_length=64)
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
        db_index=False,
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.PENDING
    )
    amount = models.DecimalField(_("paid amount"), max_digits=14, decimal_places=2, default=0)
    refund_amount = models.DecimalField(
        _("refunded amount"), max_digits=14, decimal_places=2, default=0
    )
    placed_at = models.DateTimeField(_("placed"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid"), null=True, blank=True)
    receiver_name = models.CharField(_("receiver"), max_length=100, blank=True)
    # The phone as the platform exported it, often masked; never an identity.
    phone_display = models.CharField(_("phone as exported"), max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="order_unique_ref"),
        ]
        indexes = [
            # A customer's orders by paid time (the placed time when the platform gave none),
            # as RFM and segment windows read them.
            models.Index(
                F("customer"), Coalesce("paid_at", "placed_at"), name="order_customer_paid_time_idx"
            ),
            models.Index(fields=["paid_at"], name="order_paid_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id}"


class OrderItem(models.Model):
    # orderitem_order_idx is its index.
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items", db_index=False)
    line_id = models.CharField(_("line number"), max_length=64, blank=True)
    product_ref = models.CharField(_("product id"), max_length=64, blank=True)
    title = models.CharField(_("product"), max_length=200, blank=True)
    sku = models.CharField(_("SKU"), max_length=100, blank=True)
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(
        _("unit price"), max_digits=14, decimal_places=2, null=True, blank=True
    )

    class Meta:
        verbose_name = _("order line")
        verbose_name_plural = _("order lines")
        indexes = [models.Index(fields=["order"], name="orderitem_order_idx")]

    def __str__(self) -> str:
        return self.title
