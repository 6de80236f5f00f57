from itertools import pairwise

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.customers.models import Customer

DIMENSIONS = ("r", "f", "m")


class RfmScheme(models.Model):
    """How RFM scores are given: quintiles of the customer base, or the brand's thresholds.

    One row at most is used (the first); without one, scores are quintiles. Thresholds are four
    ascending cut points per dimension (docs/rfm.md): `r` in days since the last purchase
    (at most r[0] days → 5 … more than r[3] → 1), `f` in paid orders and `m` in CNY
    (at least x[3] → 5 … below x[0] → 1).
    """

    class Mode(models.TextChoices):
        QUINTILE = "quintile", _("quintiles")
        THRESHOLDS = "thresholds", _("thresholds")

    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices, default=Mode.QUINTILE)
    thresholds = models.JSONField(_("thresholds"), default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("RFM scheme")
        verbose_name_plural = _("RFM schemes")

    def __str__(self) -> str:
        return self.get_mode_display()

    def clean(self) -> None:
        if self.mode != self.Mode.THRESHOLDS:
            return
        for dim in DIMENSIONS:
            cuts = (self.thresholds or {}).get(dim)
            if (
                not isinstance(cuts, list)
                or len(cuts) != 4
                or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in cuts)
                or any(a >= b for a, b in pairwise(cuts))
            ):
                raise ValidationError(
                    {"thresholds": _("%(dim)s needs four ascending numbers") % {"dim": dim}}
                )


class StageChange(models.Model):
    """One lifecycle stage transition of a customer, written by stages_recompute."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.CharField(_("from"), max_length=20, choices=Customer.Stage.choices)
    to_stage = models.CharField(_("to"), max_length=20, choices=Customer.Stage.choices)
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        indexes = [
            models.Index(fields=["customer", "at"], name="stagechange_customer_idx"),
            models.Index(fields=["at", "to_stage"], name="stagechange_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_stage}→{self.to_stage}"


class Segment(models.Model):
    """A saved customer segment: a definition in the segment language (siyu.segments.dsl)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    definition = models.JSONField(_("definition"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Imported here: the compiler imports rfm, which imports this module.
        from siyu.segments.dsl import SegmentError, validate_definition

        try:
            validate_definition(self.definition)
        except SegmentError as error:
            raise ValidationError({"definition": error.message}) from None
