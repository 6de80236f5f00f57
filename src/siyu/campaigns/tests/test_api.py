import pytest

from siyu.campaigns.services import campaign_plan_due
from siyu.campaigns.tests.conftest import NOW
from siyu.core.api_keys import api_key_create

pytestmark = pytest.mark.django_db


def headers(org, *scopes):
    _, raw = api_key_create(actor=org.admin.user, name="k", scopes=list(scopes))
    return {"Authorization": f"Bearer {raw}"}


def test_an_admin_key_pauses_resumes_and_cancels(client, org, make_campaign, people):
    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)
    auth = headers(org, "admin")
    url = f"/api/v1/campaigns/{campaign.pk}"

    paused = client.post(f"{url}/pause", headers=auth)
    resumed = client.post(f"{url}/resume", headers=auth)
    cancelled = client.post(f"{url}/cancel", headers=auth)
    again = client.post(f"{url}/cancel", headers=auth)

    assert [r.json()["status"] for r in (paused, resumed, cancelled)] == [
        "paused",
        "running",
        "cancelled",
    ]
    assert cancelled.json()["deliveries"] == {"cancelled": 3}
    assert again.status_code == 422 and again.json()["detail"]


def test_a_read_key_reads_but_cannot_act_and_bad_input_is_a_4xx(client, org, make_campaign, people):
    campaign = make_campaign("sms")
    auth = headers(org, "read")

    got = client.get(f"/api/v1/campaigns/{campaign.pk}", headers=auth)
    refused = client.post(f"/api/v1/campaigns/{campaign.pk}/pause", headers=auth)
    unknown = client.post(f"/api/v1/campaigns/{campaign.pk}/explode", headers=headers(org, "admin"))
    missing = client.get("/api/v1/campaigns/999999", headers=auth)

    assert got.status_code == 200 and got.json()["status"] == "scheduled"
    assert refused.status_code == 403
    assert unknown.status_code == 422
    assert missing.status_code == 404
