"""A/B tests: per-variant figures with a significance test, and promoting the winner.

Recipients are the variant's sent (or accepted) deliveries. A reply is an event of type
SIYU_CAMPAIGN_REPLY_EVENT from the customer within SIYU_CAMPAIGN_REPLY_HOURS after the send
(Siyu has no message log of its own; the WeCom connector or an integration records replies as
events). Conversions and revenue are the campaign's attributed conversions (attribution.py)
whose last touch was that variant's delivery.

The test compares each variant's conversion rate with the step's first variant (the control)
with a pooled two-proportion z-test, two-sided; docs/campaigns.md, "A/B tests".
"""

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Sum,
)
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.campaigns.models import Campaign, Conversion, Delivery, Step, Variant
from siyu.content.models import Script
from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.events.models import Event

METHOD = "two-proportion z-test"
ALPHA = 0.05
SENT = [Delivery.Status.SENT, Delivery.Status.ACCEPTED]


@dataclass(frozen=True)
class ZTest:
    z: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> ZTest | None:
    """Pooled two-proportion z-test of x2/n2 against x1/n1, two-sided.

    z = (p2 − p1) / √(p̂(1 − p̂)(1/n1 + 1/n2)) with p̂ = (x1 + x2) / (n1 + n2);
    p = erfc(|z| / √2). None when a group is empty or nobody (or everybody) converted,
    where the test says nothing.
    """
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    spread = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if spread <= 0:
        return None
    z = (x2 / n2 - x1 / n1) / math.sqrt(spread)
    return ZTest(z=z, p_value=math.erfc(abs(z) / math.sqrt(2)))


@dataclass
class VariantFigures:
    variant: Variant
    sent: int = 0
    replied: int = 0
    converted: int = 0  # recipients with at least one attributed conversion
    conversions: int = 0
    revenue: Decimal = Decimal(0)
    test: ZTest | None = None  # against the control; None for the control itself

    @property
    def reply_rate(self) -> float | None:
        return self.replied / self.sent if self.sent else None

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.sent if self.sent else None

    @property
    def reply_percent(self) -> float | None:
        return None if self.reply_rate is None else self.reply_rate * 100

    @property
    def conversion_percent(self) -> float | None:
        return None if self.conversion_rate is None else self.conversion_rate * 100

    def as_dict(self) -> dict:
        return {
            "variant_id": self.variant.pk,
            "name": self.variant.name,
            "weight": self.variant.weight,
            "sent": self.sent,
            "replied": self.replied,
            "converted": self.converted,
            "conversions": self.conversions,
            "revenue": str(self.revenue),
            "conversion_rate": self.conversion_rate,
            "z": self.test.z if self.test else None,
            "p_value": self.test.p_value if self.test else None,
        }


@dataclass
class StepTest:
    step: Step
    variants: list[VariantFigures] = field(default_factory=list)
    method: str = METHOD

    @property
    def control(self) -> VariantFigures:
        return self.variants[0]

    @property
    def leader(self) -> VariantFigures | None:
        """The variant that beats the control significantly with the best rate, if any."""
        better = [
            v
            for v in self.variants[1:]
            if v.test and v.test.significant and v.test.z > 0 and v.conversion_rate is not None
        ]
        return max(better, key=lambda v: v.conversion_rate or 0) if better else None

    @property
    def promoted(self) -> int | None:
        return self.step.ab_result.get("winner") if self.step.ab_result else None


def reply_window() -> timedelta:
    return timedelta(hours=max(settings.SIYU_CAMPAIGN_REPLY_HOURS, 0))


def replied_after_send() -> Exists:
    """A delivery whose customer replied within the reply window after it was sent."""
    return Exists(
        Event.objects.filter(
            customer_id=OuterRef("customer_id"),
            type=settings.SIYU_CAMPAIGN_REPLY_EVENT,
            occurred_at__gt=OuterRef("sent_at"),
            occurred_at__lte=ExpressionWrapper(
                OuterRef("sent_at") + reply_window(), output_field=DateTimeField()
            ),
        )
    )


def variant_figures(campaign: Campaign, *, steps: list[Step] | None = None) -> list[StepTest]:
    """Every step of the campaign with more than one variant, with each variant's figures
    and its test against the control. Three queries, whatever the number of deliveries."""
    variants = list(
        Variant.objects.filter(step__campaign_id=campaign.pk)
        .select_related("step", "script")
        .order_by("step__order", "id")
    )
    if steps is not None:
        wanted = {s.pk for s in steps}
        variants = [v for v in variants if v.step_id in wanted]
    tests: dict[int, StepTest] = {}
    figures: dict[int, VariantFigures] = {}
    for variant in variants:
        tests.setdefault(variant.step_id, StepTest(step=variant.step))
        figures[variant.pk] = VariantFigures(variant=variant)
        tests[variant.step_id].variants.append(figures[variant.pk])
    tests = {k: t for k, t in tests.items() if len(t.variants) > 1}
    if not tests:
        return []

    replied = replied_after_send()
    sent_rows = (
        Delivery.objects.filter(campaign_id=campaign.pk, step_id__in=tests, status__in=SENT)
        .values("variant_id")
        .annotate(sent=Count("id"), replied=Count("id", filter=Q(replied)))
        .order_by()
    )
    for row in sent_rows:
        if row["variant_id"] in figures:
            figures[row["variant_id"]].sent = row["sent"]
            figures[row["variant_id"]].replied = row["replied"]
    conversion_rows = (
        Conversion.objects.filter(campaign_id=campaign.pk, delivery__step_id__in=tests)
        .values(variant_id=F("delivery__variant_id"))
        .annotate(
            converted=Count("delivery_id", distinct=True),
            conversions=Count("id"),
            revenue=Sum("amount"),
        )
        .order_by()
    )
    for row in conversion_rows:
        if row["variant_id"] in figures:
            found = figures[row["variant_id"]]
            found.converted, found.conversions = row["converted"], row["conversions"]
            found.revenue = row["revenue"] or Decimal(0)

    for test in tests.values():
        control = test.control
        for other in test.variants[1:]:
            other.test = two_proportion_z_test(
                control.converted, control.sent, other.converted, other.sent
            )
    return [tests[k] for k in sorted(tests, key=lambda k: tests[k].step.order)]


@transaction.atomic
def variant_promote(
    *,
    step: Step,
    variant: Variant,
    actor=None,
    ip: str | None = None,
    via: str = "",
    now: datetime | None = None,
) -> Step:
    """Make `variant` the step's only variant from now on: the others keep their rows and
    history but get weight 0, and the step's pending deliveries (not sent yet) switch to it.

    The test's figures and p-value are kept on the step (ab_result), each variant's sends and
    replies are added to its script's statistics (usage and sent counts, replies; only what was not
    added by an earlier promotion), and the promotion is audited. Promoting again, the same or
    another variant, is allowed. Raises DomainError when the variant is not the step's, the
    step has a single variant, or the campaign was cancelled.
    """
    now = now or timezone.now()
    step = Step.objects.select_for_update(of=("self",)).select_related("campaign").get(pk=step.pk)
    if variant.step_id != step.pk:
        raise DomainError(_("This variant belongs to another step."), field="variant")
    if step.campaign.status == Campaign.Status.CANCELLED:
        raise DomainError(_("The campaign was cancelled."), field="status")
    results = variant_figures(step.campaign, steps=[step])
    if not results:
        raise DomainError(_("This step has a single variant: nothing to promote."))
    test = results[0]
    winner = next(v for v in test.variants if v.variant.pk == variant.pk)

    Variant.objects.filter(step=step).exclude(pk=variant.pk).update(weight=0)
    if winner.variant.weight == 0:
        Variant.objects.filter(pk=variant.pk).update(weight=1)
    switched = (
        Delivery.objects.filter(step=step, status=Delivery.Status.PENDING)
        .exclude(variant_id=variant.pk)
        .update(variant_id=variant.pk)
    )

    # Add to each script only what earlier promotions did not, so the statistics never count
    # a send twice however often a winner is promoted.
    recorded: dict[str, list[int]] = dict((step.ab_result or {}).get("recorded", {}))
    for figures in test.variants:
        key = str(figures.variant.pk)
        sent_before, replied_before = recorded.get(key, [0, 0])
        if figures.variant.script_id:
            sent = max(figures.sent - sent_before, 0)
            Script.objects.filter(pk=figures.variant.script_id).update(
                usage_count=F("usage_count") + sent,
                sent_count=F("sent_count") + sent,
                reply_count=F("reply_count") + max(figures.replied - replied_before, 0),
            )
        recorded[key] = [max(figures.sent, sent_before), max(figures.replied, replied_before)]

    step.ab_result = {
        "winner": variant.pk,
        "winner_name": variant.name,
        "promoted_at": now.isoformat(),
        "promoted_by": getattr(actor, "pk", None),
        "method": METHOD,
        "variants": [v.as_dict() for v in test.variants],
        "recorded": recorded,
    }
    step.save(update_fields=["ab_result"])
    test_of_winner = winner.test
    audit_record(
        actor=actor,
        action=AuditLog.Action.UPDATE,
        target=step.campaign,
        summary=(
            f"promoted variant {variant.name} of step {step.order} in campaign {step.campaign.name}"
        ),
        detail={
            "step": step.pk,
            "variant": variant.pk,
            "pending_switched": switched,
            "method": METHOD,
            "p_value": test_of_winner.p_value if test_of_winner else None,
            **({"via": via} if via else {}),
        },
        ip=ip,
    )
    return step
