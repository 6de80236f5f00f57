"""The connection settings page: admins only, secrets never shown back, test connection."""

import pytest

from siyu.channels.wecom.models import Connection
from siyu.channels.wecom.tests import fake_wecom
from siyu.core.models import AuditLog

URL = "/settings/wecom/"
VALID = {
    "corp_id": fake_wecom.CORP_ID,
    "contact_secret": fake_wecom.SECRET,
    "callback_token": fake_wecom.CALLBACK_TOKEN,
    "encoding_aes_key": fake_wecom.AES_KEY,
    "agent_id": "1000002",
}


def test_only_admins_open_the_page(org, login):
    assert login(org.manager_a).get(URL).status_code == 404
    assert login(org.staff_a).get(URL).status_code == 404
    response = login(org.admin).get(URL)
    assert response.status_code == 200
    assert "/wecom/callback/" in response.content.decode()


def test_saving_stores_secrets_and_shows_only_their_last_four(org, login, wecom):
    client = login(org.admin)
    response = client.post(URL, VALID)
    assert response.status_code == 302
    connection = Connection.objects.get()
    assert connection.contact_secret == fake_wecom.SECRET
    assert connection.encoding_aes_key == fake_wecom.AES_KEY
    page = client.get(URL).content.decode()
    for secret in (fake_wecom.SECRET, fake_wecom.CALLBACK_TOKEN, fake_wecom.AES_KEY):
        assert secret not in page
    assert "••••" + fake_wecom.SECRET[-4:] in page
    audit = AuditLog.objects.get(target_type="wecom.connection")
    assert fake_wecom.SECRET not in str(audit.detail)
    assert "contact_secret" in audit.detail["changed"]


def test_blank_secrets_keep_the_stored_ones(org, login, wecom):
    client = login(org.admin)
    client.post(URL, VALID)
    response = client.post(URL, {**VALID, "contact_secret": "", "encoding_aes_key": ""})
    assert response.status_code == 302
    connection = Connection.objects.get()
    assert connection.contact_secret == fake_wecom.SECRET
    assert connection.encoding_aes_key == fake_wecom.AES_KEY


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("encoding_aes_key", "tooshort", "43"),
        ("corp_id", "corp id with spaces", "corp id"),
        ("callback_token", "not/a/token", "32"),
        ("agent_id", "abc", "number"),
    ],
)
def test_bad_input_is_refused_with_a_reason(org, login, wecom, field, value, reason):
    response = login(org.admin).post(URL, {**VALID, field: value})
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert not Connection.objects.exists()


def test_first_save_needs_every_secret(org, login, wecom):
    response = login(org.admin).post(URL, {**VALID, "contact_secret": ""})
    assert response.status_code == 400
    assert not Connection.objects.exists()


def test_test_connection_reports_follow_users(org, login, connection, wecom):
    wecom.follow_users = ["zhangsan", "lisi", "wangwu"]
    response = login(org.admin).post(URL + "test/", follow=True)
    text = response.content.decode()
    assert "3" in text
    connection.refresh_from_db()
    assert connection.last_test_ok is True
    assert wecom.count("gettoken") == 1
    assert wecom.count("externalcontact/get_follow_user_list") == 1


def test_test_connection_explains_a_wrong_secret(org, login, connection, wecom):
    Connection.objects.update(contact_secret="wrong-secret-xyz")
    response = login(org.admin).post(URL + "test/", follow=True)
    connection.refresh_from_db()
    assert connection.last_test_ok is False
    assert "40001" in connection.last_test_message
    assert "secret is wrong" in connection.last_test_message
    assert "40001" in response.content.decode()
    assert "wrong-secret-xyz" not in response.content.decode()


def test_test_connection_when_wecom_is_down(org, login, connection, wecom, settings):
    settings.SIYU_WECOM_RETRIES = 1
    wecom.fail("gettoken", "http500", "http500")
    login(org.admin).post(URL + "test/")
    connection.refresh_from_db()
    assert connection.last_test_ok is False
    assert "could not be reached" in connection.last_test_message


def test_test_connection_is_admin_only_and_post_only(org, login, connection):
    assert login(org.manager_a).post(URL + "test/").status_code == 404
    assert login(org.admin).get(URL + "test/").status_code == 405


def test_page_speaks_chinese_by_default(org, login, connection):
    page = login(org.admin).get(URL).content.decode()
    assert "企业微信连接" in page
    assert "测试连接" in page


def test_page_queries_do_not_grow_with_callbacks(org, login, connection, django_assert_num_queries):
    from siyu.channels.wecom.models import Callback

    Callback.objects.bulk_create(
        Callback(digest=f"{n:040d}", nonce=str(n), timestamp=n, event="e", xml="<xml/>")
        for n in range(40)
    )
    client = login(org.admin)
    client.get(URL)  # warm the session and viewer caches
    # constant whatever the number of callbacks (sync history: 1, tags to WeCom: 4)
    with django_assert_num_queries(11):
        assert client.get(URL).status_code == 200
