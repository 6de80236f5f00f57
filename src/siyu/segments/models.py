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
    description = models.CharField(_("description"), max_length=300, blank=True)
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


class SegmentSnapshot(models.Model):
    """The members of a segment frozen at one moment, e.g. when a broadcast starts.

    The definition is copied, so the snapshot stays readable after the segment changes.
    """

    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots"
    )
    name = models.CharField(_("name"), max_length=150)
    definition = models.JSONField(_("definition"))
    size = models.IntegerField(_("members"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("segment snapshot")
        verbose_name_plural = _("segment snapshots")

    def __str__(self) -> str:
        return self.name


class SnapshotMember(models.Model):
    # No database foreign keys: freezing a million members would queue two million deferred
    # checks for COMMIT (most of a broadcast's snapshot time). The rows come from one INSERT …
    # SELECT of existing customers into a snapshot made in the same transaction; the ORM still
    # cascades deletes. The unique (snapshot, customer) index serves lookups by snapshot.
    snapshot = models.ForeignKey(
        SegmentSnapshot,
        on_delete=models.CASCADE,
        related_name="members",
        db_constraint=False,
        db_index=False,
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "customer"], name="snapshot_member_uniq")
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id}: {self.customer_id}"


class ClvFit(models.Model):
    """One fit of the BG/NBD and Gamma-Gamma models over the customer base (siyu.segments.clv)."""

    as_of = models.DateTimeField(_("as of"))
    # {"bgnbd": {"r", "alpha", "a", "b"}, "gamma_gamma": {"p", "q", "v"}}
    params = models.JSONField(_("parameters"), default=dict)
    log_likelihood = models.FloatField(_("log-likelihood"), null=True)
    customers = models.IntegerField(_("customers"), default=0)
    triples = models.IntegerField(_("distinct (frequency, recency, T)"), default=0)
    # Calibration/holdout comparison: {"calibration_end", "holdout_days", "rows": [...]}
    holdout = models.JSONField(_("holdout check"), default=dict, blank=True)
    seconds = models.FloatField(_("seconds"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"
        verbose_name = _("lifetime value fit")
        verbose_name_plural = _("lifetime value fits")

    def __str__(self) -> str:
        return f"CLV fit {self.as_of:%Y-%m-%d}"

    @property
    def failure(self) -> str:
        """Why the models could not be fitted ("" when they were); predictions then stay."""
        return self.params.get("error", "")


class CustomerClv(models.Model):
    """Predicted lifetime value of one buyer from the latest ClvFit.

    A narrow table of its own: every buyer's values change daily, and rewriting the wide,
    heavily indexed customer row for each of them would dominate the recompute.
    """

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.CASCADE, related_name="clv"
    )
    p_alive = models.FloatField(_("P(alive)"))
    purchases_90 = models.FloatField(_("expected purchases, next 90 days"))
    purchases_365 = models.FloatField(_("expected purchases, next 365 days"))
    value_365 = models.DecimalField(
        _("expected value, next 365 days"), max_digits=14, decimal_places=2
    )

    class Meta:
        verbose_name = _("customer lifetime value")
        verbose_name_plural = _("customer lifetime values")
        indexes = [
            models.Index(fields=["value_365"], name="clv_value_idx"),
            models.Index(fields=["p_alive"], name="clv_p_alive_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: ¥{self.value_365}"


class LayerRecompute(models.Model):
    """One finished recomputation of RFM scores or lifecycle stages, for "last computed" notes."""

    class Kind(models.TextChoices):
        RFM = "rfm", _("RFM")
        STAGES = "stages", _("lifecycle stages")

    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    as_of = models.DateTimeField(_("as of"))
    finished_at = models.DateTimeField(_("finished"), auto_now_add=True)

    class Meta:
        verbose_name = _("layer recomputation")
        verbose_name_plural = _("layer recomputations")
        indexes = [models.Index(fields=["kind", "-finished_at"], name="layerrecompute_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.as_of:%Y-%m-%d %H:%M}"
