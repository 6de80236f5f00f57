"""The event type registry page: admins only, unlabelled first, 30-day counts, editing."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from siyu.core.models import AuditLog
from siyu.customers.tests.factories import CustomerFactory
from siyu.events.models import Event, EventType

LIST = reverse("events:types")


@pytest.fixture(autouse=True)
def empty_registry(db):
    # Other apps' migrations register types of their own (content: material_viewed); these
    # tests start from a registry holding only what they create.
    EventType.objects.all().delete()


def edit_url(name: str) -> str:
    return reverse("events:type_edit", args=[name])


def events(type_name: str, *ages_in_days: float) -> None:
    customer = CustomerFactory()
    now = timezone.now()
    Event.objects.bulk_create(
        Event(customer=customer, type=type_name, occurred_at=now - timedelta(days=age))
        for age in ages_in_days
    )


@pytest.mark.parametrize("who", ["manager_a", "staff_a"])
def test_only_admins_open_the_registry(org, login, who):
    EventType.objects.create(name="checked_in")
    client = login(getattr(org, who))
    assert client.get(LIST).status_code == 404
    assert client.get(edit_url("checked_in")).status_code == 404
    response = client.post(edit_url("checked_in"), {"label": "签到"})
    assert response.status_code == 404
    assert EventType.objects.get(name="checked_in").label == ""


def test_anonymous_is_sent_to_log_in(client, db):
    assert client.get(LIST).status_code == 302


def test_unlabelled_types_come_first_with_a_badge(org, login):
    EventType.objects.create(name="a_known", label="已知")
    EventType.objects.create(name="z_new")
    EventType.objects.create(name="m_new")
    response = login(org.admin).get(LIST)
    assert response.status_code == 200
    names = [row.type.name for row in response.context["rows"]]
    assert names == ["m_new", "z_new", "a_known"]
    content = response.content.decode()
    assert content.count('<span class="badge badge-off">未标注</span>') == 2
    assert "已知" in content
    assert "分群构建器" in content


def test_counts_cover_the_last_30_days_and_last_seen_any_time(org, login):
    for name in ("viewed", "joined", "old", "quiet"):
        EventType.objects.create(name=name, label=name)
    events("viewed", 0.5, 3, 29, 31)
    events("viewed", 1)
    events("joined", 10)
    events("old", 45, 90)
    rows = {r.type.name: r for r in login(org.admin).get(LIST).context["rows"]}
    assert {name: r.recent_count for name, r in rows.items()} == {
        "viewed": 4,
        "joined": 1,
        "old": 0,
        "quiet": 0,
    }
    now = timezone.now()
    assert now - rows["viewed"].last_seen < timedelta(days=1)
    assert timedelta(days=44) < now - rows["old"].last_seen < timedelta(days=46)
    assert rows["quiet"].last_seen is None


def test_list_query_count_does_not_grow_with_types(org, login, django_assert_num_queries):
    client = login(org.admin)

    def add_types(start: int, count: int) -> None:
        for i in range(start, start + count):
            EventType.objects.create(name=f"type_{i}", label="" if i % 2 else f"类型{i}")
            events(f"type_{i}", 1, 40)

    add_types(0, 2)
    client.get(LIST)  # warm the session and the content type caches
    # session, user, staff, the types with their last event, the 30-day counts
    with django_assert_num_queries(5):
        assert client.get(LIST).status_code == 200
    add_types(2, 10)
    with django_assert_num_queries(5):
        response = client.get(LIST)
    assert len(response.context["rows"]) == 12


def test_edit_labels_a_type_and_parses_properties(org, login):
    EventType.objects.create(name="viewed_material")
    client = login(org.admin)
    form = client.get(edit_url("viewed_material"))
    assert form.status_code == 200
    response = client.post(
        edit_url("viewed_material"),
        {
            "label": "查看素材",
            "description": "导购发给客户的素材被打开",
            "properties": "material: 素材名称\n\n  channel ：来源渠道  \n",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == LIST
    saved = EventType.objects.get(name="viewed_material")
    assert saved.label == "查看素材"
    assert saved.description == "导购发给客户的素材被打开"
    assert saved.properties == {"material": "素材名称", "channel": "来源渠道"}
    assert AuditLog.objects.filter(
        action=AuditLog.Action.UPDATE, target_id=str(saved.pk), actor=org.admin.user
    ).exists()
    # The form shows the stored properties back as lines, by name.
    content = client.get(edit_url("viewed_material")).content.decode()
    assert "channel: 来源渠道\nmaterial: 素材名称" in content


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ("material: 素材\nchannel", "第 2 行"),
        ("material: 素材\n\nchannel:", "第 3 行"),
        ("1st: 第一", "第 1 行"),
        ("素材: 名称", "第 1 行"),
        ("a: x\nb: y\na: z", "第 3 行"),
    ],
)
def test_bad_property_lines_are_refused_with_the_line_number(org, login, properties, message):
    EventType.objects.create(name="checked_in", properties={"store": "门店"})
    response = login(org.admin).post(
        edit_url("checked_in"), {"label": "签到", "properties": properties}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    saved = EventType.objects.get(name="checked_in")
    assert (saved.label, saved.properties) == ("", {"store": "门店"})


def test_a_label_is_required(org, login):
    EventType.objects.create(name="checked_in")
    response = login(org.admin).post(edit_url("checked_in"), {"label": " "})
    assert response.status_code == 400
    assert "alert-error" in response.content.decode()


def test_an_unknown_type_is_404(org, login):
    assert login(org.admin).get(edit_url("nope")).status_code == 404
