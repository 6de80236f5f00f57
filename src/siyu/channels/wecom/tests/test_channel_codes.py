"""Channel codes and their WeCom contact ways: console pages, caps, adds and cost per add."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from siyu.channels.wecom.models import ChannelCode
from siyu.channels.wecom.services import channel_codes_reset_caps
from siyu.channels.wecom.tests.fake_wecom import event_xml
from siyu.core.models import AuditLog
from siyu.customers.models import Relationship
from siyu.customers.tests.factories import CustomerFactory

URL = "/settings/wecom/codes/"


@pytest.fixture
def staff(org):
    for member, userid in ((org.staff_a, "zhangsan"), (org.staff_a2, "lisi")):
        member.wecom_userid = userid
        member.save(update_fields=["wecom_userid"])
    return org


def form(org, **overrides):
    data = {
        "name": "抖音直播间",
        "state": "dy_live_01",
        "staff": [org.staff_a.pk, org.staff_a2.pk],
        "spend": "300.00",
        "daily_cap": "0",
        "skip_verify": "on",
    }
    data.update(overrides)
    return data


def test_creating_a_code_creates_the_contact_way(org, login, connection, wecom, staff):
    client = login(org.admin)
    response = client.post(URL + "new/", form(org))
    assert response.status_code == 302
    code = ChannelCode.objects.get()
    way = wecom.contact_ways[code.config_id]
    assert (way["type"], way["scene"], way["state"], way["user"]) == (
        2, 2, "dy_live_01", ["zhangsan", "lisi"]
    )  # fmt: skip
    assert code.qr_code.endswith(".png") and code.wecom_users == ["zhangsan", "lisi"]
    page = client.get(response["Location"]).content.decode()
    assert code.qr_code in page
    assert AuditLog.objects.filter(target_type="wecom.channelcode", action="create").exists()


def test_one_staff_member_makes_a_single_contact_way(org, login, connection, wecom, staff):
    login(org.admin).post(URL + "new/", form(org, staff=[org.staff_a.pk]))
    assert wecom.contact_ways[ChannelCode.objects.get().config_id]["type"] == 1


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"state": "x" * 31}, "30"),
        ({"state": "有中文"}, "letters, digits"),
        ({"staff": []}, ""),
        ({"spend": "-1"}, ""),
    ],
)
def test_bad_input_is_refused(org, login, connection, wecom, staff, overrides, reason):
    response = login(org.admin).post(URL + "new/", form(org, **overrides))
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not ChannelCode.objects.exists() and not wecom.contact_ways


def test_a_taken_state_is_refused(org, login, connection, wecom, staff):
    client = login(org.admin)
    client.post(URL + "new/", form(org))
    response = client.post(URL + "new/", form(org, name="另一个"))
    assert response.status_code == 400
    assert len(wecom.contact_ways) == 1


def test_staff_without_a_wecom_id_cannot_be_chosen(org, login, connection, wecom, staff):
    response = login(org.admin).post(URL + "new/", form(org, staff=[org.staff_b.pk]))
    assert response.status_code == 400
    assert not wecom.contact_ways


def test_wecom_refusing_keeps_nothing(org, login, connection, wecom, staff):
    wecom.fail("externalcontact/add_contact_way", 41045)
    response = login(org.admin).post(URL + "new/", form(org))
    assert response.status_code == 400
    assert "41045" in response.content.decode()
    assert not ChannelCode.objects.exists()


def test_editing_updates_the_contact_way(org, login, connection, wecom, staff):
    client = login(org.admin)
    client.post(URL + "new/", form(org))
    code = ChannelCode.objects.get()
    response = client.post(f"{URL}{code.pk}/", form(org, name="新名字", staff=[org.staff_a2.pk]))
    assert response.status_code == 302
    code.refresh_from_db()
    assert code.name == "新名字" and code.state == "dy_live_01"
    assert wecom.contact_ways[code.config_id]["user"] == ["lisi"]


def test_deleting_deletes_the_contact_way(org, login, connection, wecom, staff):
    client = login(org.admin)
    client.post(URL + "new/", form(org))
    code = ChannelCode.objects.get()
    wecom.fail("externalcontact/del_contact_way", 40058)
    client.post(f"{URL}{code.pk}/delete/")
    assert ChannelCode.objects.exists()  # WeCom refused: the code stays, and says why
    client.post(f"{URL}{code.pk}/delete/")
    assert not ChannelCode.objects.exists() and not wecom.contact_ways


def test_only_admins(org, login, connection):
    assert login(org.manager_a).get(URL).status_code == 404
    assert login(org.staff_a).get(URL + "new/").status_code == 404


def test_list_shows_adds_removals_and_cost_per_add(
    org, login, connection, staff, django_assert_num_queries
):
    for n in range(3):
        ChannelCode.objects.create(state=f"s{n}", name=f"码{n}", spend=Decimal("100"))
    now = timezone.now()
    for status in ["active", "active", "removed"]:
        Relationship.objects.create(
            customer=CustomerFactory(), staff=org.staff_a, added_at=now, state="s0", status=status
        )
    client = login(org.admin)
    client.get(URL)
    with django_assert_num_queries(5):
        page = client.get(URL).content.decode()
    assert "33.33" in page  # 100 spent, 3 adds


def add_callback(emit, wecom, userid: str, external_userid: str):
    wecom.add_contact(external_userid, name="客户", follow=[{"userid": userid}])
    emit(
        event_xml(
            "change_external_contact",
            "add_external_contact",
            UserID=userid,
            ExternalUserID=external_userid,
            State="dy_live_01",
        )
    )


def test_daily_cap_takes_staff_out_of_the_contact_way(org, login, emit, connection, wecom, staff):
    login(org.admin).post(URL + "new/", form(org, daily_cap="1"))
    code = ChannelCode.objects.get()

    add_callback(emit, wecom, "zhangsan", "wm1")
    code.refresh_from_db()
    assert code.wecom_users == ["lisi"]
    assert wecom.contact_ways[code.config_id]["user"] == ["lisi"]

    add_callback(emit, wecom, "lisi", "wm2")  # everyone at the cap: offer the fewest adds
    code.refresh_from_db()
    assert code.wecom_users == ["zhangsan", "lisi"]

    # The next day the adds are yesterday's: the whole pool again.
    Relationship.objects.update(added_at=timezone.now() - timedelta(days=1))
    ChannelCode.objects.update(wecom_users=["lisi"])
    assert channel_codes_reset_caps() == 1
    assert wecom.contact_ways[code.config_id]["user"] == ["zhangsan", "lisi"]


def test_poster_holds_wecoms_qr_name_staff_and_store(org, login, connection, wecom, staff):
    client = login(org.admin)
    client.post(URL + "new/", form(org))
    code = ChannelCode.objects.get()
    assert f"{URL}{code.pk}/poster/" in client.get(f"{URL}{code.pk}/").content.decode()

    response = client.get(f"{URL}{code.pk}/poster/")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert 'filename="poster-dy_live_01.svg"' in response["Content-Disposition"]
    svg = response.content.decode()
    assert "抖音直播间" in svg
    assert "data:image/png;base64,iVBORw0KGgo" in svg  # WeCom's own QR image, embedded
    assert (org.staff_a.nickname or org.staff_a.name) in svg
    assert org.staff_a.store.name in svg


def test_poster_without_wecoms_image_says_why(org, login, connection, wecom, staff):
    client = login(org.admin)
    client.post(URL + "new/", form(org))
    code = ChannelCode.objects.get()
    wecom.contact_ways.clear()  # WeCom no longer serves the image
    response = client.get(f"{URL}{code.pk}/poster/")
    assert response.status_code == 502
    assert "404" in response.content.decode()
