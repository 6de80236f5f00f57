"""The API client against the fake WeCom server: the shared token, refresh, retries, errors,
and logs that carry no secrets."""

import logging
import socket
import threading

import pytest
import redis

from siyu.channels.wecom import client as client_module
from siyu.channels.wecom.client import (
    DatabaseTokenStore,
    RedisTokenStore,
    WecomClient,
    WecomError,
)
from siyu.channels.wecom.models import AccessToken
from siyu.channels.wecom.tests import fake_wecom

REDIS_URL = "redis://127.0.0.1:6379/15"


def make_client(**kwargs) -> WecomClient:
    return WecomClient(corp_id=fake_wecom.CORP_ID, secret=fake_wecom.SECRET, **kwargs)


@pytest.fixture(autouse=True)
def _fresh_concurrency():
    client_module._concurrency.clear()


def test_token_is_fetched_once_and_shared_by_clients(db, wecom):
    wecom.follow_users = ["zhangsan", "lisi"]
    assert make_client().follow_users() == ["zhangsan", "lisi"]
    assert make_client().follow_users() == ["zhangsan", "lisi"]
    assert wecom.count("gettoken") == 1
    assert AccessToken.objects.get().token in wecom.tokens


@pytest.mark.parametrize("error", [42001, 40014, 41001])
def test_token_error_refreshes_and_retries_once(db, wecom, error):
    api = make_client()
    api.follow_users()
    if error == 42001:
        wecom.expire_tokens()
    else:
        wecom.fail("externalcontact/get_follow_user_list", error)
    assert api.follow_users() == []
    assert wecom.count("gettoken") == 2


def test_token_error_after_refresh_is_raised(db, wecom):
    wecom.fail("externalcontact/get_follow_user_list", 40014, 40014)
    with pytest.raises(WecomError) as exc:
        make_client().follow_users()
    assert exc.value.errcode == 40014
    assert wecom.count("externalcontact/get_follow_user_list") == 2


@pytest.mark.parametrize("failure", [45009, -1, "http500", "reset"])
def test_transient_failures_are_retried(db, wecom, failure):
    wecom.follow_users = ["zhangsan"]
    wecom.fail("externalcontact/get_follow_user_list", failure, failure)
    assert make_client().follow_users() == ["zhangsan"]
    assert wecom.count("externalcontact/get_follow_user_list") == 3


def test_retries_are_bounded(db, wecom, settings):
    settings.SIYU_WECOM_RETRIES = 2
    wecom.fail("externalcontact/get_follow_user_list", 45009, 45009, 45009, 45009)
    with pytest.raises(WecomError) as exc:
        make_client().follow_users()
    assert (exc.value.errcode, exc.value.path) == (45009, "externalcontact/get_follow_user_list")
    assert wecom.count("externalcontact/get_follow_user_list") == 3


def test_unreachable_wecom_is_a_network_error(db, settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    settings.SIYU_WECOM_BACKOFF_MS = 1
    settings.REDIS_URL = ""
    with pytest.raises(WecomError) as exc:
        make_client(base_url=f"http://127.0.0.1:{port}/cgi-bin/").follow_users()
    assert exc.value.errcode == client_module.NETWORK
    assert exc.value.path == "gettoken"


def test_too_many_concurrent_calls_lowers_concurrency(db, wecom, settings):
    settings.SIYU_WECOM_CONCURRENCY = 4
    api = make_client()
    wecom.fail("externalcontact/get_follow_user_list", 45033)
    api.follow_users()
    assert api.concurrency.limit == 2


def test_other_errors_are_raised_at_once_with_details(db, wecom):
    with pytest.raises(WecomError) as exc:
        make_client().external_contact("wm-nobody")
    assert exc.value.errcode == 84061
    assert exc.value.path == "externalcontact/get"
    assert "not external contact" in exc.value.errmsg
    assert wecom.count("externalcontact/get") == 1


def test_wrong_secret_is_reported(db, wecom):
    with pytest.raises(WecomError) as exc:
        WecomClient(corp_id=fake_wecom.CORP_ID, secret="wrong").follow_users()
    assert (exc.value.errcode, exc.value.path) == (40001, "gettoken")


def test_calls_are_logged_without_token_or_secret(db, wecom, caplog):
    caplog.set_level(logging.INFO)
    wecom.fail("externalcontact/get_follow_user_list", 45009)
    make_client().follow_users()
    text = caplog.text
    assert "externalcontact/get_follow_user_list errcode=45009" in text
    assert "externalcontact/get_follow_user_list errcode=0" in text
    assert "duration_ms=" in text
    assert fake_wecom.SECRET not in text
    assert not any(token in text for token in wecom.tokens)
    assert "TOKEN-" not in text


def test_paginated_contact_follows_the_cursor(db, wecom):
    wecom.add_contact("wm1", name="王芳", follow=[{"userid": "zhangsan", "createtime": 1}])
    detail = make_client().external_contact("wm1")
    assert detail["external_contact"]["name"] == "王芳"
    assert [f["userid"] for f in detail["follow_user"]] == ["zhangsan"]


def test_batch_get_by_user_pages_and_refuses_bad_limits(db, wecom):
    for n in range(3):
        wecom.add_contact(f"wm{n}", follow=[{"userid": "zhangsan"}])
    api = make_client()
    first = api.contacts_by_user(["zhangsan"], limit=2)
    assert len(first["external_contact_list"]) == 2
    rest = api.contacts_by_user(["zhangsan"], cursor=first["next_cursor"], limit=2)
    assert len(rest["external_contact_list"]) == 1 and rest["next_cursor"] == ""
    with pytest.raises(WecomError) as exc:
        api.contacts_by_user(["zhangsan"], limit=101)
    assert exc.value.errcode == 40058


@pytest.fixture
def redis_store(settings):
    settings.REDIS_URL = REDIS_URL
    store = RedisTokenStore(REDIS_URL)
    yield store
    for key in store.redis.scan_iter("siyu:wecom:token:*"):
        store.redis.delete(key)


def test_redis_store_shares_the_token(db, wecom, redis_store):
    wecom.follow_users = ["a"]
    make_client().follow_users()
    make_client().follow_users()
    assert wecom.count("gettoken") == 1
    assert not AccessToken.objects.exists()
    wecom.expire_tokens()
    make_client().follow_users()
    assert wecom.count("gettoken") == 2


def test_redis_store_refreshes_once_for_many_workers(wecom, redis_store):
    wecom.gettoken_delay = 0.2
    tokens = []

    def worker():
        tokens.append(make_client().token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1
    assert wecom.count("gettoken") == 1


def test_stale_token_refresh_keeps_a_newer_token(db, wecom):
    store = DatabaseTokenStore()
    api = make_client(store=store)
    old = api.token()
    new = api.token(stale=old)
    assert new != old
    # A second worker that saw the old token fail does not throw the new one away.
    assert api.token(stale=old) == new
    assert wecom.count("gettoken") == 2


@pytest.mark.django_db(transaction=True)
def test_database_store_refreshes_once_for_many_workers(wecom):
    from django.db import connection

    if connection.vendor == "sqlite":
        # The test database is SQLite's shared-cache memory database, whose table locks fail
        # at once instead of waiting; on disk, IMMEDIATE transactions queue on the busy timeout.
        pytest.skip("needs a database whose row locks wait")
    wecom.gettoken_delay = 0.2
    tokens, errors = [], []

    def worker():
        try:
            tokens.append(make_client(store=DatabaseTokenStore()).token())
        except Exception as exc:  # pragma: no cover - shown in the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(tokens)) == 1
    assert wecom.count("gettoken") == 1


def test_redis_is_reachable():
    assert redis.Redis.from_url(REDIS_URL).ping()
