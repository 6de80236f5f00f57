from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header

import pytest

from siyu.campaigns.models import Campaign, Delivery, StaffTask
from siyu.campaigns.ratelimit import tokens_take
from siyu.campaigns.services import (
    campaign_cancel,
    campaign_pause,
    campaign_plan_due,
    campaign_resume,
    deliveries_claim,
    deliveries_send_due,
    staff_task_done,
)
from siyu.campaigns.tests.conftest import NOW
from siyu.core.errors import DomainError

pytestmark = pytest.mark.django_db


def statuses(campaign):
    return dict(Delivery.objects.filter(campaign=campaign).values_list("customer_id", "status"))


def planned(make_campaign, *channels, **fields):
    campaign = make_campaign(*channels, **fields)
    campaign_plan_due(now=NOW)
    return campaign


def test_sms_goes_through_the_gateway_signed_and_personalised(make_campaign, people, sms_gateway):
    campaign = planned(make_campaign, "sms")

    summary = deliveries_send_due(now=NOW)

    assert summary.sent == 3
    assert len(sms_gateway.received) == 3
    texts = {d["to"]: d["text"] for d in sms_gateway.received.values()}
    assert texts[people[0].phone] == f"李0您好，{people[0].owner.name}"
    row = Delivery.objects.get(campaign=campaign, customer=people[0])
    assert row.status == "sent" and row.sent_at == NOW and row.attempts == 1
    assert row.external_id == f"sms-{row.idempotency_key}"
    assert row.rendered_text == texts[people[0].phone]


def test_a_refused_number_fails_at_once_and_a_busy_gateway_is_retried_with_backoff(
    make_campaign, people, sms_gateway, settings
):
    settings.SIYU_CAMPAIGN_MAX_ATTEMPTS = 3
    settings.SIYU_CAMPAIGN_RETRY_SECONDS = 60
    sms_gateway.errors[people[0].phone] = (400, "invalid_number")
    sms_gateway.errors[people[1].phone] = (503, "busy")
    campaign = planned(make_campaign, "sms")

    deliveries_send_due(now=NOW)

    refused = Delivery.objects.get(campaign=campaign, customer=people[0])
    busy = Delivery.objects.get(campaign=campaign, customer=people[1])
    assert (refused.status, refused.error) == ("failed", "HTTP 400 invalid_number: refused")
    assert (busy.status, busy.planned_for) == ("pending", NOW + timedelta(seconds=60))
    # Not due yet: nothing happens; then 60 s and 120 s later, then it gives up.
    assert deliveries_send_due(now=NOW + timedelta(seconds=59)).retrying == 0
    deliveries_send_due(now=NOW + timedelta(seconds=60))
    busy.refresh_from_db()
    assert (busy.status, busy.attempts) == ("pending", 2)
    assert busy.planned_for == NOW + timedelta(seconds=180)
    deliveries_send_due(now=NOW + timedelta(seconds=180))
    busy.refresh_from_db()
    assert (busy.status, busy.attempts) == ("failed", 3)
    assert "503 busy" in busy.error


def test_email_reaches_a_real_smtp_server_with_the_idempotency_key(
    make_campaign, people, smtp_server
):
    campaign = planned(make_campaign, "email")

    summary = deliveries_send_due(now=NOW)

    assert summary.sent == 3
    assert len(smtp_server.messages) == 3
    first = next(m for m in smtp_server.messages if m["To"] == "li0@example.com")
    row = Delivery.objects.get(campaign=campaign, customer=people[0])
    assert first["X-Siyu-Idempotency-Key"] == row.idempotency_key
    assert first["Message-ID"].startswith(f"<{row.idempotency_key}@")
    assert str(make_header(decode_header(first["Subject"]))) == "李0的礼物"
    assert first.get_payload(decode=True).decode().strip() == f"李0您好，{people[0].owner.name}"


def test_a_refused_mailbox_fails_without_retry(make_campaign, people, smtp_server):
    from siyu.customers.models import Identity

    Identity.objects.filter(customer=people[0], kind="email").update(value="bounce@example.com")
    campaign = planned(make_campaign, "email")

    deliveries_send_due(now=NOW)

    row = Delivery.objects.get(campaign=campaign, customer=people[0])
    assert row.status == "failed" and "refused" in row.error
    assert len(smtp_server.messages) == 2


def test_an_unreachable_smtp_server_is_retried(make_campaign, people, settings):
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens
    campaign = planned(make_campaign, "email")

    summary = deliveries_send_due(now=NOW)

    assert summary.retrying == 3
    assert set(statuses(campaign).values()) == {"pending"}


def test_staff_tasks_go_to_the_customer_owner_once(make_campaign, people, org):
    campaign = planned(make_campaign, "staff_task")

    deliveries_send_due(now=NOW)
    deliveries_send_due(now=NOW + timedelta(minutes=1))

    tasks = StaffTask.objects.filter(delivery__campaign=campaign)
    assert tasks.count() == 3
    task = tasks.get(customer=people[0])
    assert task.staff == org.staff_a
    assert task.text == f"李0您好，{org.staff_a.name}"
    with pytest.raises(DomainError):
        staff_task_done(task=task, staff=org.staff_b)
    staff_task_done(task=task, staff=org.staff_a, now=NOW)
    task.refresh_from_db()
    assert task.done_at == NOW


# ------------------------------------------------------------------------ do not disturb


def test_the_daily_cap_holds_a_second_marketing_message_until_the_next_day(
    make_campaign, people, sms_gateway
):
    first = planned(make_campaign, "sms")
    deliveries_send_due(now=NOW)
    second = planned(make_campaign, "email")  # another channel: the cross-channel cap
    transactional = planned(make_campaign, "sms", marketing=False)

    deliveries_send_due(now=NOW + timedelta(minutes=1), channels=["email", "sms"])

    assert set(statuses(first).values()) == {"sent"}
    assert set(Delivery.objects.filter(campaign=second).values_list("status", "reason")) == {
        ("suppressed", "cap_day")
    }
    assert set(statuses(transactional).values()) == {"sent"}  # not marketing: not capped


def test_the_day_is_the_calendar_day_in_the_organisation_zone(
    make_campaign, people, sms_gateway, settings
):
    settings.SIYU_CAMPAIGN_CHANNEL_CAP_WEEK = 10
    evening = datetime(2026, 6, 30, 11, 0, tzinfo=UTC)  # 19:00 Shanghai
    planned(make_campaign, "sms")
    deliveries_send_due(now=evening)
    # 23:59:59 in Shanghai is still the same day; 00:00 is the next.
    late = datetime(2026, 6, 30, 15, 59, 59, tzinfo=UTC)
    next_day = datetime(2026, 6, 30, 16, 0, tzinfo=UTC)

    same_day = make_campaign("sms", marketing=True, now=late)
    campaign_plan_due(now=late)
    Delivery.objects.filter(campaign=same_day).update(planned_for=late)
    settings.SIYU_QUIET_HOURS = ""  # only the cap is under test here
    deliveries_send_due(now=late)
    tomorrow = make_campaign("sms", now=next_day)
    campaign_plan_due(now=next_day)
    deliveries_send_due(now=next_day)

    assert set(Delivery.objects.filter(campaign=same_day).values_list("reason", flat=True)) == {
        "cap_day"
    }
    assert set(statuses(tomorrow).values()) == {"sent"}


def test_the_weekly_cap_counts_seven_calendar_days(make_campaign, people, sms_gateway, settings):
    settings.SIYU_CAMPAIGN_CHANNEL_CAP_WEEK = 10
    campaigns = []
    for day in range(4):  # one message a day for four days at 10:00
        moment = NOW + timedelta(days=day)
        campaigns.append(make_campaign("sms", now=moment))
        campaign_plan_due(now=moment)
        deliveries_send_due(now=moment)
    after_week = make_campaign("sms", now=NOW + timedelta(days=7))
    campaign_plan_due(now=NOW + timedelta(days=7))
    deliveries_send_due(now=NOW + timedelta(days=7))

    assert [set(statuses(c).values()) for c in campaigns] == [{"sent"}] * 3 + [{"suppressed"}]
    assert set(Delivery.objects.filter(campaign=campaigns[3]).values_list("reason", flat=True)) == {
        "cap_week"
    }
    # Day 7: days 0 to 2 still count (6 days back from local midnight is day 1): 2 sent.
    assert set(statuses(after_week).values()) == {"sent"}


@pytest.mark.parametrize(
    ("local_clock", "sent"),
    [((20, 59), True), ((21, 0), False), ((8, 59), False), ((9, 0), True)],
)
def test_quiet_hours_boundaries_hold_deliveries_for_nine(
    make_campaign, people, sms_gateway, local_clock, sent
):
    hour, minute = local_clock
    # Shanghai is UTC+8 all year.
    moment = datetime(2026, 6, 30, (hour - 8) % 24, minute, tzinfo=UTC)
    campaign = make_campaign("sms", now=moment, marketing=False)
    campaign_plan_due(now=moment)
    Campaign.objects.filter(pk=campaign.pk).update(marketing=True)  # planned as due now

    summary = deliveries_send_due(now=moment)

    assert (summary.sent == 3) is sent
    if not sent:
        rows = Delivery.objects.filter(campaign=campaign)
        nine = timezone_nine_after(moment)
        assert set(rows.values_list("status", "planned_for", "postponed")) == {
            ("pending", nine, "quiet_hours")
        }
        assert deliveries_send_due(now=nine).sent == 3


def timezone_nine_after(moment):
    from django.utils import timezone

    local = timezone.localtime(moment)
    day = local.date() if local.hour < 9 else local.date() + timedelta(days=1)
    return timezone.make_aware(datetime(day.year, day.month, day.day, 9, 0))


def test_an_opt_out_after_planning_is_honoured_at_send_time(make_campaign, people, sms_gateway):
    campaign = planned(make_campaign, "sms")
    people[0].consent_sms = False
    people[0].save(update_fields=["consent_sms"])

    deliveries_send_due(now=NOW)

    row = Delivery.objects.get(campaign=campaign, customer=people[0])
    assert (row.status, row.reason) == ("suppressed", "opt_out")
    assert len(sms_gateway.received) == 2


# ------------------------------------------------------------- pause, resume, cancel


def test_pause_holds_sending_and_resume_releases_it(make_campaign, people, sms_gateway):
    campaign = planned(make_campaign, "sms")
    campaign_pause(campaign=campaign)

    assert deliveries_send_due(now=NOW).sent == 0
    campaign_plan_due(now=NOW + timedelta(minutes=1))
    assert set(statuses(campaign).values()) == {"pending"}

    campaign_resume(campaign=campaign)
    assert deliveries_send_due(now=NOW + timedelta(minutes=2)).sent == 3


def test_cancel_cancels_what_is_pending_and_cannot_be_undone(make_campaign, people):
    campaign = planned(make_campaign, "sms")

    assert campaign_cancel(campaign=campaign, now=NOW) == 3

    assert set(statuses(campaign).values()) == {"cancelled"}
    with pytest.raises(DomainError):
        campaign_resume(campaign=campaign)
    with pytest.raises(DomainError):
        campaign_cancel(campaign=campaign)


# ------------------------------------------------------------------ crash safety, rate


def test_a_batch_left_sending_by_a_dead_worker_is_sent_once_after_the_lease(
    make_campaign, people, sms_gateway, settings
):
    settings.SIYU_CAMPAIGN_LEASE_SECONDS = 300
    campaign = planned(make_campaign, "sms")
    # A worker claims everything and dies before sending (SIGKILL between claim and send).
    claimed = deliveries_claim(channel="sms", limit=10, now=NOW)
    assert len(claimed) == 3

    assert deliveries_send_due(now=NOW + timedelta(seconds=299)).sent == 0
    summary = deliveries_send_due(now=NOW + timedelta(seconds=301))

    assert (summary.reclaimed, summary.sent) == (3, 3)
    assert sms_gateway.posts == 3 and len(sms_gateway.received) == 3
    assert set(statuses(campaign).values()) == {"sent"}


def test_a_worker_dying_after_the_peer_received_does_not_double_the_message(
    make_campaign, people, sms_gateway, settings
):
    campaign = planned(make_campaign, "sms")
    deliveries_send_due(now=NOW)
    # Pretend the results were never recorded: the rows are still "sending" when it died.
    Delivery.objects.filter(campaign=campaign).update(status="sending", claimed_at=NOW)

    deliveries_send_due(now=NOW + timedelta(seconds=settings.SIYU_CAMPAIGN_LEASE_SECONDS + 1))

    assert sms_gateway.posts == 6  # sent twice on the wire …
    assert len(sms_gateway.received) == 3  # … but the same keys: the gateway keeps one each


def test_two_claims_never_take_the_same_delivery(make_campaign, people):
    planned(make_campaign, "sms")

    first = deliveries_claim(channel="sms", limit=2, now=NOW)
    second = deliveries_claim(channel="sms", limit=2, now=NOW)

    assert len(first) == 2 and len(second) == 1
    assert not set(first) & set(second)


def test_the_token_bucket_refills_at_the_channel_rate(settings):
    settings.SIYU_CHANNEL_RATE_SMS = 5

    assert tokens_take(channel="sms", want=100, now=NOW) == 5
    assert tokens_take(channel="sms", want=100, now=NOW) == 0
    assert tokens_take(channel="sms", want=100, now=NOW + timedelta(milliseconds=400)) == 2
    assert tokens_take(channel="sms", want=100, now=NOW + timedelta(seconds=10)) == 5


def test_the_sender_keeps_to_the_rate(make_campaign, people, sms_gateway, settings):
    settings.SIYU_CHANNEL_RATE_SMS = 2
    campaign = planned(make_campaign, "sms")

    summary = deliveries_send_due(now=NOW)

    assert summary.sent == 2
    assert list(statuses(campaign).values()).count("pending") == 1
