import pytest
from django.urls import reverse

from siyu.campaigns.models import Campaign, Delivery
from siyu.campaigns.services import campaign_create, campaign_plan_due
from siyu.campaigns.tests.conftest import NOW
from siyu.core.models import AuditLog

pytestmark = pytest.mark.django_db


def test_the_list_shows_campaigns_in_scope_with_a_fixed_number_of_queries(
    org, login, make_campaign, django_assert_num_queries
):
    for _ in range(5):
        make_campaign("sms")
    campaign_create(name="别人的活动", kind="broadcast", owner=org.staff_b)
    client = login(org.staff_a)

    # session, user, the viewer's staff row, the owner filter's choices, one page of campaigns
    with django_assert_num_queries(5):
        mine = client.get(reverse("campaigns:list"))

    assert mine.status_code == 200
    assert "别人的活动" not in mine.content.decode()
    admin_page = login(org.admin).get(reverse("campaigns:list")).content.decode()
    assert admin_page.count("活动 broadcast") == 5 and "别人的活动" in admin_page
    assert "营销活动" in admin_page or "Campaigns" in admin_page


def test_the_detail_shows_figures_by_status_and_reason(org, login, make_campaign, people):
    people[0].consent_sms = False
    people[0].save(update_fields=["consent_sms"])
    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)

    page = login(org.admin).get(reverse("campaigns:detail", args=[campaign.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="campaign-total">3<' in html
    assert "已退订" in html  # the opt-out reason, in Chinese


def test_pause_resume_and_cancel_from_the_console_are_audited(org, login, make_campaign, people):
    campaign = make_campaign("sms")
    campaign_plan_due(now=NOW)
    client = login(org.admin)

    for action, status in [("pause", "paused"), ("resume", "running"), ("cancel", "cancelled")]:
        response = client.post(reverse("campaigns:action", args=[campaign.pk, action]))
        assert response.status_code == 302
        campaign.refresh_from_db()
        assert campaign.status == status

    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {
        "cancelled"
    }
    assert AuditLog.objects.filter(target_id=str(campaign.pk)).count() == 3
    again = client.post(reverse("campaigns:action", args=[campaign.pk, "resume"]), follow=True)
    assert again.status_code == 200  # refused with a message, not a 500
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"


def test_out_of_scope_or_unknown_actions_answer_404(org, login, make_campaign):
    campaign = make_campaign("sms")  # owned by the admin
    client = login(org.staff_b)

    assert client.get(reverse("campaigns:detail", args=[campaign.pk])).status_code == 404
    assert client.post(reverse("campaigns:action", args=[campaign.pk, "pause"])).status_code == 404
    admin = login(org.admin)
    assert admin.post(reverse("campaigns:action", args=[campaign.pk, "explode"])).status_code == 404
    assert admin.get(reverse("campaigns:action", args=[campaign.pk, "pause"])).status_code == 405


def test_my_tasks_today_lists_my_open_tasks_and_marks_them_done(
    org, login, make_campaign, people, django_assert_num_queries
):
    from datetime import timedelta

    from django.utils import timezone

    from siyu.campaigns.models import StaffTask
    from siyu.campaigns.services import deliveries_send_due

    make_campaign("staff_task", now=timezone.now())
    campaign_plan_due(now=timezone.now())
    deliveries_send_due(channels=["staff_task"])
    StaffTask.objects.filter(customer=people[0]).update(due_at=timezone.now() - timedelta(days=2))
    client = login(org.staff_a)

    # session, user, the viewer's staff row, the tasks with customer and campaign
    with django_assert_num_queries(4):
        page = client.get(reverse("campaigns:tasks"))

    html = page.content.decode()
    assert html.count('class="task-text"') == 3
    assert html.count("逾期") == 1  # the overdue badge, once
    task = StaffTask.objects.get(customer=people[1])
    assert (
        login(org.staff_b).post(reverse("campaigns:task_done", args=[task.pk])).status_code == 404
    )
    client = login(org.staff_a)
    assert client.post(reverse("campaigns:task_done", args=[task.pk])).status_code == 302
    task.refresh_from_db()
    assert task.done_at is not None
    assert client.get(reverse("campaigns:tasks")).content.decode().count('class="task-text"') == 2
