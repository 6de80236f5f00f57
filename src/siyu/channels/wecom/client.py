"""The WeCom API client: one shared access token, retries, structured errors, quiet logs.

Every call goes through `WecomClient.call`, which adds the access token, refreshes it once on
the token errors (40014 invalid, 42001 expired, 41001 missing), retries with exponential
backoff on 45009 (rate limited), -1 (busy), 5xx answers, network errors and timeouts (at most
SIYU_WECOM_RETRIES times), halves this process's concurrency on 45033 (too many concurrent
calls), and raises WecomError with the errcode, errmsg and path otherwise. Each attempt is
logged with its path, errcode and duration; never the token, the secret or the query string.
"""

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from siyu.channels.wecom.models import AccessToken, Connection

log = logging.getLogger("siyu.wecom")

TOKEN_ERRORS = frozenset({40014, 42001, 41001})
RETRY_ERRORS = frozenset({45009, -1})
TOO_MANY_CONCURRENT = 45033
NETWORK = -2  # our errcode for a call that never got a WeCom answer
# Treat a token as expired this long before WeCom says, so a call never carries a dying one.
TOKEN_MARGIN = 300


class WecomError(Exception):
    """WeCom answered with a non-zero errcode, or could not be reached (errcode -2)."""

    def __init__(self, *, errcode: int, errmsg: str, path: str) -> None:
        super().__init__(f"WeCom {path}: {errcode} {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg
        self.path = path


@dataclass(frozen=True)
class Token:
    value: str
    expires_in: int


class TokenStore(Protocol):
    def get(self, key: str) -> str | None: ...

    def refresh(self, key: str, fetch: Callable[[], Token], stale: str | None) -> str: ...


class DatabaseTokenStore:
    """A row per credential; the refresh holds its row lock, so one process calls gettoken and
    the others, waiting on the lock, read the token it stored."""

    def get(self, key: str) -> str | None:
        soon = timezone.now() + timedelta(seconds=TOKEN_MARGIN)
        row = AccessToken.objects.filter(key=key, expires_at__gt=soon).values_list("token")
        found = row.first()
        return found[0] if found and found[0] else None

    def refresh(self, key: str, fetch: Callable[[], Token], stale: str | None) -> str:
        AccessToken.objects.bulk_create([AccessToken(key=key)], ignore_conflicts=True)
        with transaction.atomic():
            row = AccessToken.objects.select_for_update().get(key=key)
            soon = timezone.now() + timedelta(seconds=TOKEN_MARGIN)
            if row.token and row.token != stale and row.expires_at and row.expires_at > soon:
                return row.token  # another process refreshed it while we waited
            token = fetch()
            row.token = token.value
            row.refreshed_at = timezone.now()
            row.expires_at = row.refreshed_at + timedelta(seconds=token.expires_in)
            row.save(update_fields=["token", "expires_at", "refreshed_at"])
            return row.token


class RedisTokenStore:
    """The token under a key that expires with it; refreshed under a Redis lock."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)

    def _key(self, key: str) -> str:
        return f"siyu:wecom:token:{key}"

    def get(self, key: str) -> str | None:
        value = self.redis.get(self._key(key))
        return value.decode() if value else None

    def refresh(self, key: str, fetch: Callable[[], Token], stale: str | None) -> str:
        name = self._key(key)
        with self.redis.lock(f"{name}:lock", timeout=60, blocking_timeout=60):
            current = self.redis.get(name)
            if current and current.decode() != stale:
                return current.decode()
            token = fetch()
            ttl = max(token.expires_in - TOKEN_MARGIN, 1)
            self.redis.set(name, token.value, ex=ttl)
            return token.value


def token_store() -> TokenStore:
    url = getattr(settings, "REDIS_URL", "")
    return RedisTokenStore(url) if url else DatabaseTokenStore()


class Concurrency:
    """Calls in flight from this process to one corp; 45033 halves the limit, and it grows
    back by one after every 50 calls without it."""

    def __init__(self, limit: int) -> None:
        self.ceiling = max(limit, 1)
        self.limit = self.ceiling
        self.active = 0
        self.calm = 0
        self.cond = threading.Condition()

    def __enter__(self) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    def __exit__(self, *exc: object) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def lower(self) -> None:
        with self.cond:
            self.limit = max(1, self.limit // 2)
            self.calm = 0

    def calm_call(self) -> None:
        with self.cond:
            self.calm += 1
            if self.calm >= 50 and self.limit < self.ceiling:
                self.limit += 1
                self.calm = 0
                self.cond.notify_all()


_concurrency: dict[str, Concurrency] = {}
_concurrency_lock = threading.Lock()


def _concurrency_for(corp_id: str) -> Concurrency:
    with _concurrency_lock:
        if corp_id not in _concurrency:
            _concurrency[corp_id] = Concurrency(settings.SIYU_WECOM_CONCURRENCY)
        return _concurrency[corp_id]


class WecomClient:
    def __init__(
        self,
        *,
        corp_id: str,
        secret: str,
        base_url: str | None = None,
        store: TokenStore | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.corp_id = corp_id
        self.secret = secret
        self.key = hashlib.sha256(f"{corp_id}:{secret}".encode()).hexdigest()[:32]
        self.store = store or token_store()
        self.http = http or httpx.Client(
            base_url=base_url or settings.SIYU_WECOM_BASE_URL,
            timeout=settings.SIYU_WECOM_TIMEOUT,
        )
        self.concurrency = _concurrency_for(corp_id)

    @classmethod
    def for_connection(cls, connection: Connection) -> "WecomClient":
        return cls(corp_id=connection.corp_id, secret=connection.contact_secret)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "WecomClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The token -------------------------------------------------------------------------------

    def token(self, *, stale: str | None = None) -> str:
        """A valid access token; `stale` is one WeCom just refused, which forces a refresh
        unless another process has already replaced it."""
        if stale is None and (cached := self.store.get(self.key)):
            return cached
        return self.store.refresh(self.key, self._fetch_token, stale)

    def _fetch_token(self) -> Token:
        params = {"corpid": self.corp_id, "corpsecret": self.secret}
        data = self._with_retries("GET", "gettoken", params, None)
        return Token(data["access_token"], int(data.get("expires_in") or 7200))

    # Calls -----------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> dict:
        """One API call with the token; returns the answer when errcode is 0.

        Raises WecomError for any other errcode, and with errcode -2 when WeCom could not be
        reached after the retries.
        """
        token = self.token()
        refreshed = False
        while True:
            current = token
            try:
                return self._with_retries(
                    method, path, {**(params or {}), "access_token": current}, json
                )
            except WecomError as exc:
                if exc.errcode not in TOKEN_ERRORS or refreshed:
                    raise
                refreshed = True
                token = self.token(stale=current)

    def _with_retries(self, method: str, path: str, params: dict, json: Any) -> dict:
        attempt = 0
        while True:
            errcode, data, errmsg = self._attempt(method, path, params, json, attempt)
            if errcode == 0:
                self.concurrency.calm_call()
                return data
            retryable = errcode in RETRY_ERRORS or errcode in (NETWORK, TOO_MANY_CONCURRENT)
            if not retryable or attempt >= settings.SIYU_WECOM_RETRIES:
                raise WecomError(errcode=errcode, errmsg=errmsg, path=path)
            delay = settings.SIYU_WECOM_BACKOFF_MS / 1000 * 2**attempt
            if errcode == TOO_MANY_CONCURRENT:
                self.concurrency.lower()
                delay *= 2
            time.sleep(delay)
            attempt += 1

    def _attempt(
        self, method: str, path: str, params: dict, json: Any, attempt: int
    ) -> tuple[int, dict, str]:
        started = time.monotonic()
        try:
            with self.concurrency:
                response = self.http.request(method, path, params=params, json=json)
            if response.status_code >= 500:
                errcode, data, errmsg = NETWORK, {}, f"HTTP {response.status_code}"
            else:
                data = response.json()
                errcode, errmsg = int(data.get("errcode") or 0), str(data.get("errmsg", ""))
        except httpx.HTTPError as exc:
            errcode, data, errmsg = NETWORK, {}, type(exc).__name__
        except (ValueError, AttributeError, TypeError):
            errcode, data, errmsg = NETWORK, {}, "answer is not a JSON object"
        log.info(
            "wecom call %s %s errcode=%s duration_ms=%d attempt=%d",
            method,
            path,
            errcode,
            (time.monotonic() - started) * 1000,
            attempt + 1,
        )
        return errcode, data, errmsg

    # Endpoints -------------------------------------------------------------------------------

    def follow_users(self) -> list[str]:
        return self.call("GET", "externalcontact/get_follow_user_list").get("follow_user", [])

    def external_userids(self, userid: str) -> list[str]:
        data = self.call("GET", "externalcontact/list", params={"userid": userid})
        return data.get("external_userid", [])

    def external_contact(self, external_userid: str) -> dict:
        """The contact and every follow user, following next_cursor past 500 followers."""
        params = {"external_userid": external_userid}
        data = self.call("GET", "externalcontact/get", params=params)
        follow = list(data.get("follow_user", []))
        while cursor := data.get("next_cursor"):
            data = self.call("GET", "externalcontact/get", params={**params, "cursor": cursor})
            follow.extend(data.get("follow_user", []))
        return {"external_contact": data.get("external_contact", {}), "follow_user": follow}

    def contacts_by_user(self, userids: list[str], *, cursor: str = "", limit: int = 100) -> dict:
        body = {"userid_list": userids, "cursor": cursor, "limit": limit}
        return self.call("POST", "externalcontact/batch/get_by_user", json=body)

    def send_welcome_msg(self, *, welcome_code: str, text: str) -> dict:
        body = {"welcome_code": welcome_code, "text": {"content": text}}
        return self.call("POST", "externalcontact/send_welcome_msg", json=body)

    def corp_tags(self) -> list[dict]:
        return self.call("POST", "externalcontact/get_corp_tag_list", json={}).get("tag_group", [])

    def group_chat(self, chat_id: str) -> dict:
        body = {"chat_id": chat_id, "need_name": 1}
        return self.call("POST", "externalcontact/groupchat/get", json=body)["group_chat"]

    def contact_way_add(
        self, *, users: list[str], state: str, remark: str = "", skip_verify: bool = True
    ) -> dict:
        """A 「联系我」 QR contact way (scene 2); returns config_id and qr_code."""
        body = {
            "type": 1 if len(users) == 1 else 2,
            "scene": 2,
            "remark": remark,
            "skip_verify": skip_verify,
            "state": state,
            "user": users,
        }
        return self.call("POST", "externalcontact/add_contact_way", json=body)

    def contact_way_update(
        self, *, config_id: str, users: list[str], remark: str = "", skip_verify: bool = True
    ) -> dict:
        body = {
            "config_id": config_id,
            "remark": remark,
            "skip_verify": skip_verify,
            "user": users,
        }
        return self.call("POST", "externalcontact/update_contact_way", json=body)

    def contact_way_delete(self, *, config_id: str) -> dict:
        body = {"config_id": config_id}
        return self.call("POST", "externalcontact/del_contact_way", json=body)

    def transfer_customer(
        self, *, handover: str, takeover: str, external_userids: list[str], resigned: bool
    ) -> list[dict]:
        """Start transfers; returns [{external_userid, errcode}] (0: started)."""
        path = "externalcontact/" + ("resigned/" if resigned else "") + "transfer_customer"
        body = {
            "handover_userid": handover,
            "takeover_userid": takeover,
            "external_userid": external_userids,
        }
        return self.call("POST", path, json=body).get("customer", [])

    def transfer_result(self, *, handover: str, takeover: str, cursor: str, resigned: bool) -> dict:
        path = "externalcontact/" + ("resigned/" if resigned else "") + "transfer_result"
        body = {"handover_userid": handover, "takeover_userid": takeover, "cursor": cursor}
        return self.call("POST", path, json=body)

    def group_chats(self, *, owners: list[str], cursor: str = "", limit: int = 1000) -> dict:
        """One page of the groups the owners (≤100) own, dismissed ones left out."""
        body = {
            "status_filter": 0,
            "owner_filter": {"userid_list": owners},
            "cursor": cursor,
            "limit": limit,
        }
        return self.call("POST", "externalcontact/groupchat/list", json=body)
