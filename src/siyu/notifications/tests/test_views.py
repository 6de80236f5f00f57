import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from siyu.customers.tests.factories import CustomerFactory
from siyu.notifications.models import Notification
from siyu.notifications.services import notify

LIST = reverse("notifications:list")
BELL = reverse("notifications:bell")
READ_ALL = reverse("notifications:read_all")


def open_url(pk: int) -> str:
    return reverse("notifications:open", args=[pk])


def test_bell_counts_only_the_viewers_unread(org, login):
    notify(staff_ids=[org.staff_a.pk, org.staff_b.pk], kind="k", key="a", title="t")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="b", title="t")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="b", title="t")  # same unread row

    response = login(org.staff_a).get(BELL, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert 'data-unread="2"' in response.content.decode()
    assert 'data-unread="1"' in login(org.staff_b).get(BELL).content.decode()
    assert "data-unread" not in login(org.staff_a2).get(BELL).content.decode()


def test_bell_is_one_count_query(org, login, django_assert_num_queries):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="a", title="t")
    client = login(org.staff_a)
    client.get(BELL)
    # session, user, staff, the unread COUNT
    with django_assert_num_queries(4):
        assert client.get(BELL).status_code == 200


def test_every_console_page_carries_the_polling_bell(org, login):
    html = login(org.staff_a).get(reverse("console:home")).content.decode()
    assert 'id="bell"' in html
    assert f'hx-get="{BELL}"' in html
    assert "every 20s" in html


def test_pure_admin_without_staff_row_sees_no_bell_and_an_empty_list(client, db):
    get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.login(username="root", password="pw-root-123")

    assert 'id="bell"' not in client.get(reverse("console:home")).content.decode()
    assert "data-unread" not in client.get(BELL).content.decode()
    response = client.get(LIST)
    assert response.status_code == 200
    assert response.context["notifications"] == []


def test_logged_out_poll_is_sent_to_login(client, db):
    response = client.get(BELL, headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("console:login"))


def test_list_shows_own_notifications_unread_first(org, login):
    customer = CustomerFactory(owner=org.staff_a, name="王小明")
    notify(
        staff_ids=[org.staff_a.pk],
        kind="material_viewed",
        key="m1",
        title="王小明 opened 新品手册",
        body="3 times, 2 min 10 s",
        customer_id=customer.pk,
    )
    notify(
        staff_ids=[org.staff_a.pk], kind="material_viewed", key="m1", title="王小明 opened 新品手册"
    )
    notify(staff_ids=[org.staff_b.pk], kind="k", key="x", title="for someone else")

    response = login(org.staff_a).get(LIST)

    html = response.content.decode()
    assert response.status_code == 200
    assert "王小明 opened 新品手册" in html
    assert "×2" in html
    assert "for someone else" not in html
    assert reverse("customers:detail", args=[customer.pk]) in html


def test_list_query_count_is_flat(org, login, django_assert_num_queries):
    client = login(org.staff_a)
    client.get(LIST)

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            customer = CustomerFactory(owner=org.staff_a)
            notify(
                staff_ids=[org.staff_a.pk],
                kind="k",
                key=f"k{i}",
                title=f"t{i}",
                customer_id=customer.pk,
            )

    add(2, 0)
    # session, user, staff, the notifications with their customers
    with django_assert_num_queries(4):
        client.get(LIST)
    add(10, 2)
    with django_assert_num_queries(4):
        response = client.get(LIST)
    assert len(response.context["notifications"]) == 12


def test_open_marks_read_and_goes_to_the_link(org, login):
    customer = CustomerFactory(owner=org.staff_a)
    target = reverse("customers:detail", args=[customer.pk])
    notify(staff_ids=[org.staff_a.pk], kind="k", key="a", title="t", url=target)
    notification = Notification.objects.get()

    response = login(org.staff_a).post(open_url(notification.pk))

    assert response.status_code == 302
    assert response["Location"] == target
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_open_never_redirects_off_site(org, login):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="a", title="t", url="https://evil.example/")
    notification = Notification.objects.get()

    response = login(org.staff_a).post(open_url(notification.pk))

    assert response["Location"] == LIST


def test_open_someone_elses_notification_is_404_and_leaves_it_unread(org, login):
    notify(staff_ids=[org.staff_b.pk], kind="k", key="a", title="t")
    notification = Notification.objects.get()

    assert login(org.staff_a).post(open_url(notification.pk)).status_code == 404
    assert login(org.admin).post(open_url(notification.pk)).status_code == 404
    notification.refresh_from_db()
    assert notification.read_at is None


@pytest.mark.parametrize("url", [open_url(1), READ_ALL])
def test_writes_refuse_get(org, login, url):
    assert login(org.staff_a).get(url).status_code == 405


def test_mark_all_read_clears_the_bell(org, login):
    notify(staff_ids=[org.staff_a.pk, org.staff_b.pk], kind="k", key="a", title="t")
    notify(staff_ids=[org.staff_a.pk], kind="k", key="b", title="t")
    client = login(org.staff_a)

    response = client.post(READ_ALL)

    assert response.status_code == 302
    assert "data-unread" not in client.get(BELL).content.decode()
    assert Notification.objects.filter(read_at__isnull=True).count() == 1  # staff_b's


def test_list_speaks_chinese_by_default(org, login):
    notify(staff_ids=[org.staff_a.pk], kind="k", key="a", title="t")
    client = login(org.staff_a)
    assert "全部标为已读" in client.get(LIST).content.decode()
    assert "1 条未读" in client.get(BELL).content.decode()
