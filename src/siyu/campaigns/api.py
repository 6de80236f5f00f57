"""Campaigns over the REST API: read a campaign's status and figures (scope read or admin);
pause, resume and cancel it (scope admin); read its A/B tests and promote a winner (read /
admin). Refusals answer 422 with the reason."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.http import Http404
from ninja import Router
from pydantic import BaseModel, Field

from siyu.api import scoped
from siyu.campaigns.experiments import METHOD, StepTest, variant_figures, variant_promote
from siyu.campaigns.models import Campaign, Step, Variant
from siyu.campaigns.selectors import campaign_figures
from siyu.campaigns.services import campaign_cancel, campaign_pause, campaign_resume

router = Router(tags=["campaigns"])
ACTIONS = {"pause": campaign_pause, "resume": campaign_resume, "cancel": campaign_cancel}


class CampaignOut(BaseModel):
    id: int
    name: str
    kind: str
    status: str
    start_at: datetime | None
    deliveries: dict[str, int] = Field(..., description="deliveries by status")
    suppressed: dict[str, int] = Field(..., description="suppressed deliveries by reason")
    conversions: int
    revenue: Decimal
    cost: Decimal


def _campaign(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404
    return campaign


def _out(campaign: Campaign) -> dict:
    figures = campaign_figures(campaign)
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "kind": campaign.kind,
        "status": campaign.status,
        "start_at": campaign.start_at,
        "deliveries": figures["by_status"],
        "suppressed": figures["by_reason"],
        "conversions": figures["conversions"],
        "revenue": figures["revenue"],
        "cost": campaign.cost,
    }


@router.get(
    "/{campaign_id}", response=CampaignOut, auth=scoped("read", "admin"), summary="A campaign"
)
def campaign_get(request, campaign_id: int):
    return _out(_campaign(campaign_id))


@router.post(
    "/{campaign_id}/{action}",
    response=CampaignOut,
    auth=scoped("admin"),
    summary="Pause, resume or cancel a campaign",
)
def campaign_act(request, campaign_id: int, action: Literal["pause", "resume", "cancel"]):
    campaign = _campaign(campaign_id)
    ACTIONS[action](campaign=campaign)
    campaign.refresh_from_db()
    return _out(campaign)


class VariantResultOut(BaseModel):
    variant_id: int
    name: str
    weight: int = Field(..., description="0 once another variant was promoted")
    sent: int = Field(..., description="recipients: deliveries sent or accepted")
    replied: int = Field(..., description="recipients with a reply event within the window")
    converted: int = Field(..., description="recipients with an attributed conversion")
    conversions: int
    revenue: Decimal
    conversion_rate: float | None
    z: float | None = Field(..., description="against the step's first variant (control)")
    p_value: float | None = Field(..., description="two-sided; None for the control")


class StepTestOut(BaseModel):
    step_id: int
    order: int
    method: str = Field(METHOD, description="the significance test used")
    promoted_variant_id: int | None
    variants: list[VariantResultOut]


class PromoteIn(BaseModel):
    variant_id: int


def _test_out(test: StepTest) -> dict:
    return {
        "step_id": test.step.pk,
        "order": test.step.order,
        "method": test.method,
        "promoted_variant_id": test.promoted,
        "variants": [v.as_dict() for v in test.variants],
    }


@router.get(
    "/{campaign_id}/ab/results",
    response=list[StepTestOut],
    auth=scoped("read", "admin"),
    summary="A campaign's A/B tests: figures per variant and the significance test",
)
def campaign_ab_results(request, campaign_id: int):
    return [_test_out(t) for t in variant_figures(_campaign(campaign_id))]


@router.post(
    "/{campaign_id}/steps/{step_id}/promote",
    response=StepTestOut,
    auth=scoped("admin"),
    summary="Promote an A/B test's winner: the step's only variant from now on",
)
def campaign_variant_promote(request, campaign_id: int, step_id: int, payload: PromoteIn):
    step = Step.objects.filter(pk=step_id, campaign_id=_campaign(campaign_id).pk).first()
    variant = Variant.objects.filter(pk=payload.variant_id).first()
    if step is None or variant is None:
        raise Http404
    key = request.auth
    variant_promote(step=step, variant=variant, actor=key.created_by, via=f"API key {key.name}")
    return _test_out(variant_figures(step.campaign, steps=[step])[0])
