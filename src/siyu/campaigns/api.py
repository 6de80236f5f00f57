"""Campaigns over the REST API: read a campaign's status and figures (scope read or admin);
pause, resume and cancel it (scope admin). Refusals answer 422 with the reason."""

from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.http import Http404
from ninja import Router
from pydantic import BaseModel, Field

from siyu.api import scoped
from siyu.campaigns.models import Campaign
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
