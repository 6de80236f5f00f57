"""A fake WeCom server for the tests: a real HTTP server on 127.0.0.1 speaking the documented
shapes and error codes of the endpoints the connector uses, and a helper that emits callbacks
the documented way (encrypted, signed, POSTed as XML).

Errors it answers on its own: 40013/40001 (wrong corp id/secret), 41001 (no token), 40014
(unknown token), 42001 (expired token, see `expire_tokens`), 40058 (a required parameter is
missing or malformed), 84061 (unknown external contact), 41050/41051 (welcome code expired or
already used), 90001 unknown chat. Queue others per path with `fail(path, *codes)`: an int is
answered as that errcode, "http500" as an HTTP 500, "reset" as a dropped connection.
"""

import io
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import segno

from siyu.channels.wecom.crypto import MessageCrypt, signature
from siyu.core.tests import local_server

CORP_ID = "wwfake0123456789ab"
SECRET = "fake-contact-secret-0123456789abcdefghijklmnop"
CALLBACK_TOKEN = "fakeCallbackToken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WELCOME_VALIDITY = 20  # seconds, as WeCom documents


@dataclass
class FakeWecom:
    url: str = ""
    corp_id: str = CORP_ID
    secret: str = SECRET
    calls: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    failures: dict[str, list] = field(default_factory=dict)
    follow_users: list[str] = field(default_factory=list)
    contacts: dict[str, dict] = field(default_factory=dict)
    tag_groups: list[dict] = field(default_factory=list)
    group_chats: dict[str, dict] = field(default_factory=dict)
    welcome_codes: dict[str, float] = field(default_factory=dict)
    welcomes: list[dict] = field(default_factory=list)
    contact_ways: dict[str, dict] = field(default_factory=dict)
    # (handover, takeover) → {external_userid: {"status": 1..5, "takeover_time": seconds}}
    transfers: dict[tuple[str, str], dict] = field(default_factory=dict)
    # msgid → {"sender", "dispatching", "send": {external_userid: status 0..3}}
    mass_messages: dict[str, dict] = field(default_factory=dict)
    marks: list[dict] = field(default_factory=list)
    gettoken_delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: itertools.count = field(default_factory=itertools.count)

    # Test set-up -----------------------------------------------------------------------------

    def fail(self, path: str, *codes: int | str) -> None:
        with self.lock:
            self.failures.setdefault(path, []).extend(codes)

    def expire_tokens(self) -> None:
        with self.lock:
            self.expired |= self.tokens
            self.tokens.clear()

    def count(self, path: str) -> int:
        return sum(1 for _, p in self.calls if p == path)

    def add_contact(
        self,
        external_userid: str,
        *,
        name: str = "",
        unionid: str = "",
        gender: int = 0,
        follow: list[dict] | None = None,
    ) -> None:
        self.contacts[external_userid] = {
            "external_contact": {
                "external_userid": external_userid,
                "name": name,
                "type": 1,
                "gender": gender,
                **({"unionid": unionid} if unionid else {}),
            },
            "follow_user": follow or [],
        }

    def issue_welcome_code(self, code: str) -> str:
        self.welcome_codes[code] = time.monotonic()
        return code

    # The API ---------------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict | None]:
        with self.lock:
            self.calls.append((method, path))
            queued = self.failures.get(path)
            failure = queued.pop(0) if queued else None
        if failure == "http500":
            return 500, None
        if failure == "reset":
            return 0, None
        if failure is not None:
            return 200, {"errcode": failure, "errmsg": f"fake error {failure}"}
        if path == "gettoken":
            return 200, self._gettoken(query)
        token = query.get("access_token", "")
        if not token:
            return 200, {"errcode": 41001, "errmsg": "access_token missing"}
        with self.lock:
            if token in self.expired:
                return 200, {"errcode": 42001, "errmsg": "access_token expired"}
            if token not in self.tokens:
                return 200, {"errcode": 40014, "errmsg": "invalid access_token"}
        handler = ENDPOINTS.get(path)
        if handler is None:
            return 404, None
        return 200, handler(self, query, body)

    def _gettoken(self, query: dict) -> dict:
        if query.get("corpid") != self.corp_id:
            return {"errcode": 40013, "errmsg": "invalid corpid"}
        if query.get("corpsecret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        time.sleep(self.gettoken_delay)
        token = f"TOKEN-{next(self.counter)}-" + "x" * 40
        with self.lock:
            self.tokens.add(token)
        return {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200}

    def _follow_users(self, query: dict, body: dict) -> dict:
        return {"errcode": 0, "errmsg": "ok", "follow_user": self.follow_users}

    def _list(self, query: dict, body: dict) -> dict:
        userid = query.get("userid")
        if not userid:
            return {"errcode": 40058, "errmsg": "userid missing"}
        ids = [
            eid
            for eid, c in self.contacts.items()
            if any(f["userid"] == userid for f in c["follow_user"])
        ]
        return {"errcode": 0, "errmsg": "ok", "external_userid": ids}

    def _get(self, query: dict, body: dict) -> dict:
        eid = query.get("external_userid")
        if not eid:
            return {"errcode": 40058, "errmsg": "external_userid missing"}
        if eid not in self.contacts:
            return {"errcode": 84061, "errmsg": "not external contact"}
        return {"errcode": 0, "errmsg": "ok", **self.contacts[eid]}

    def _batch(self, query: dict, body: dict) -> dict:
        userids = body.get("userid_list")
        if not isinstance(userids, list) or not userids or len(userids) > 100:
            return {"errcode": 40058, "errmsg": "userid_list must hold 1..100 user ids"}
        limit = body.get("limit") or 50
        if not isinstance(limit, int) or not 1 <= limit <= 100:
            return {"errcode": 40058, "errmsg": "limit must be 1..100"}
        rows = [
            {"external_contact": c["external_contact"], "follow_info": f}
            for c in self.contacts.values()
            for f in c["follow_user"]
            if f["userid"] in userids
        ]
        start = int(body.get("cursor") or 0)
        page = rows[start : start + limit]
        cursor = str(start + limit) if start + limit < len(rows) else ""
        return {"errcode": 0, "errmsg": "ok", "external_contact_list": page, "next_cursor": cursor}

    def _send_welcome(self, query: dict, body: dict) -> dict:
        code = body.get("welcome_code")
        content = (body.get("text") or {}).get("content", "")
        if not code:
            return {"errcode": 40058, "errmsg": "welcome_code missing"}
        if len(content.encode()) > 4000:
            return {"errcode": 40058, "errmsg": "text.content longer than 4000 bytes"}
        with self.lock:
            issued = self.welcome_codes.pop(code, None)
            if issued is None:
                used = any(w["welcome_code"] == code for w in self.welcomes)
                return {"errcode": 41051 if used else 41050, "errmsg": "welcome code refused"}
            if time.monotonic() - issued > WELCOME_VALIDITY:
                return {"errcode": 41050, "errmsg": "welcome code expired"}
            self.welcomes.append({"welcome_code": code, "text": content})
        return {"errcode": 0, "errmsg": "ok"}

    def _corp_tags(self, query: dict, body: dict) -> dict:
        return {"errcode": 0, "errmsg": "ok", "tag_group": self.tag_groups}

    def _group_chat(self, query: dict, body: dict) -> dict:
        chat_id = body.get("chat_id")
        if not chat_id:
            return {"errcode": 40058, "errmsg": "chat_id missing"}
        if chat_id not in self.group_chats:
            return {"errcode": 90001, "errmsg": "unknown chat"}
        return {"errcode": 0, "errmsg": "ok", "group_chat": self.group_chats[chat_id]}

    def _add_contact_way(self, query: dict, body: dict) -> dict:
        users, state = body.get("user") or [], body.get("state", "")
        if body.get("type") not in (1, 2) or body.get("scene") not in (1, 2):
            return {"errcode": 40058, "errmsg": "type and scene must be 1 or 2"}
        if not users or (body["type"] == 1 and len(users) != 1):
            return {"errcode": 40058, "errmsg": "user must hold one user for type 1, some for 2"}
        if len(users) > 100:
            return {"errcode": 41041, "errmsg": "more than 100 users"}
        if len(state) > 30 or len(body.get("remark", "")) > 30:
            return {"errcode": 40058, "errmsg": "state and remark are at most 30 characters"}
        config_id = f"cfg{next(self.counter)}"
        self.contact_ways[config_id] = {"config_id": config_id, **body}
        qr = f"{self.url}qr/{config_id}.png" if body["scene"] == 2 else None
        return {
            "errcode": 0,
            "errmsg": "ok",
            "config_id": config_id,
            **({"qr_code": qr} if qr else {}),
        }

    def _update_contact_way(self, query: dict, body: dict) -> dict:
        way = self.contact_ways.get(body.get("config_id", ""))
        if way is None:
            return {"errcode": 40058, "errmsg": "invalid config_id"}
        users = body.get("user")
        if users is not None and (not users or len(users) > 100):
            return {"errcode": 40058, "errmsg": "user must hold 1..100 users"}
        way.update({k: v for k, v in body.items() if k != "config_id"})
        return {"errcode": 0, "errmsg": "ok"}

    def _del_contact_way(self, query: dict, body: dict) -> dict:
        if self.contact_ways.pop(body.get("config_id", ""), None) is None:
            return {"errcode": 40058, "errmsg": "invalid config_id"}
        return {"errcode": 0, "errmsg": "ok"}

    def _group_chats(self, query: dict, body: dict) -> dict:
        owners = (body.get("owner_filter") or {}).get("userid_list") or []
        limit = body.get("limit") or 100
        if not isinstance(limit, int) or not 1 <= limit <= 1000 or len(owners) > 100:
            return {"errcode": 40058, "errmsg": "limit must be 1..1000, owners at most 100"}
        rows = [
            {"chat_id": chat_id, "status": 0}
            for chat_id, chat in sorted(self.group_chats.items())
            if not owners or chat.get("owner") in owners
        ]
        start = int(body.get("cursor") or 0)
        page = rows[start : start + limit]
        cursor = str(start + limit) if start + limit < len(rows) else ""
        return {"errcode": 0, "errmsg": "ok", "group_chat_list": page, "next_cursor": cursor}

    def complete_transfer(self, external_userid: str, status: int = 1) -> None:
        """The customer's 24 hours passed (1), or they refused (3), or the taker is full (4)."""
        for customers in self.transfers.values():
            if external_userid in customers:
                customers[external_userid] = {"status": status, "takeover_time": 1764633600}

    def _transfer_customer(self, query: dict, body: dict) -> dict:
        handover, takeover = body.get("handover_userid"), body.get("takeover_userid")
        ids = body.get("external_userid") or []
        if not handover or not takeover or not ids or len(ids) > 100:
            return {"errcode": 40058, "errmsg": "handover, takeover and 1..100 ids are required"}
        answers = []
        for eid in ids:
            follows = self.contacts.get(eid, {}).get("follow_user", [])
            if not any(f["userid"] == handover for f in follows):
                answers.append({"external_userid": eid, "errcode": 40096})
                continue
            self.transfers.setdefault((handover, takeover), {})[eid] = {"status": 2}
            answers.append({"external_userid": eid, "errcode": 0})
        return {"errcode": 0, "errmsg": "ok", "customer": answers}

    def _transfer_result(self, query: dict, body: dict) -> dict:
        key = (body.get("handover_userid"), body.get("takeover_userid"))
        rows = [
            {"external_userid": eid, **state}
            for eid, state in sorted(self.transfers.get(key, {}).items())
        ]
        start = int(body.get("cursor") or 0)
        page = rows[start : start + 2]  # small pages, so the tests follow the cursor
        cursor = str(start + 2) if start + 2 < len(rows) else ""
        return {"errcode": 0, "errmsg": "ok", "customer": page, "next_cursor": cursor}

    def staff_sends(self, msgid: str, statuses: dict[str, int] | None = None) -> None:
        """The sender confirmed the task: each recipient 1 (sent) unless `statuses` says 2/3."""
        task = self.mass_messages[msgid]
        task["dispatching"] = False
        for eid in task["send"]:
            default = 2 if eid in task.get("not_owned", ()) else 1
            task["send"][eid] = (statuses or {}).get(eid, default)

    def _mark_tag(self, query: dict, body: dict) -> dict:
        known = {t["id"] for g in self.tag_groups for t in g.get("tag", [])}
        add, eid = body.get("add_tag") or [], body.get("external_userid", "")
        remove = body.get("remove_tag") or []
        follows = self.contacts.get(eid, {}).get("follow_user", [])
        follow = next((f for f in follows if f["userid"] == body.get("userid")), None)
        if follow is None:
            return {"errcode": 84061, "errmsg": "not external contact"}
        if not add and not remove:
            return {"errcode": 40058, "errmsg": "add_tag and remove_tag cannot both be empty"}
        if not set(add) | set(remove) <= known:
            return {"errcode": 40068, "errmsg": "invalid tagid"}
        tags = [t for t in follow.get("tags", []) if t["tag_id"] not in remove]
        tags.extend({"tag_id": t, "type": 1} for t in add if {"tag_id": t, "type": 1} not in tags)
        follow["tags"] = tags
        self.marks.append(body)
        return {"errcode": 0, "errmsg": "ok"}

    def tags_of(self, external_userid: str, userid: str) -> set[str]:
        follows = self.contacts[external_userid]["follow_user"]
        follow = next(f for f in follows if f["userid"] == userid)
        return {t["tag_id"] for t in follow.get("tags", [])}

    def _add_corp_tag(self, query: dict, body: dict) -> dict:
        """New tags in the group named by group_id, or by group_name (made if new)."""
        new = body.get("tag") or []
        names = [t.get("name") or "" for t in new]
        if not new or not all(names) or any(len(n) > 30 for n in names):
            return {"errcode": 40058, "errmsg": "tag must hold names of 1..30 characters"}
        if body.get("group_id"):
            group = next((g for g in self.tag_groups if g["group_id"] == body["group_id"]), None)
            if group is None:
                return {"errcode": 40068, "errmsg": "invalid group_id"}
        else:
            name = body.get("group_name") or ""
            if not name or len(name) > 30:
                return {"errcode": 40058, "errmsg": "group_name of 1..30 characters"}
            group = next((g for g in self.tag_groups if g["group_name"] == name), None)
            if group is None:
                group = {
                    "group_id": f"etGROUP{next(self.counter)}",
                    "group_name": name,
                    "create_time": 1764633600,
                    "order": body.get("order") or 0,
                    "tag": [],
                }
                self.tag_groups.append(group)
        if set(names) & {t["name"] for t in group["tag"]}:
            return {"errcode": 40071, "errmsg": "tag name already exists"}
        for t in new:
            group["tag"].append(
                {"id": f"etTAG{next(self.counter)}", "name": t["name"],
                 "create_time": 1764633600, "order": t.get("order") or 0}
            )  # fmt: skip
        return {"errcode": 0, "errmsg": "ok", "tag_group": group}

    def _edit_corp_tag(self, query: dict, body: dict) -> dict:
        target, name = body.get("id"), body.get("name")
        if not target or (name is not None and not 1 <= len(name) <= 30):
            return {"errcode": 40058, "errmsg": "id and a name of 1..30 characters"}
        for group in self.tag_groups:
            if group["group_id"] == target:
                group["group_name"] = name or group["group_name"]
                return {"errcode": 0, "errmsg": "ok"}
            for tag in group["tag"]:
                if tag["id"] == target:
                    tag["name"] = name or tag["name"]
                    return {"errcode": 0, "errmsg": "ok"}
        return {"errcode": 40068, "errmsg": "invalid tagid"}

    def _del_corp_tag(self, query: dict, body: dict) -> dict:
        """Deleting every tag of a group deletes the group, as WeCom does."""
        tag_ids, group_ids = set(body.get("tag_id") or []), set(body.get("group_id") or [])
        if not tag_ids and not group_ids:
            return {"errcode": 40058, "errmsg": "tag_id or group_id required"}
        known_groups = {g["group_id"] for g in self.tag_groups}
        known_tags = {t["id"] for g in self.tag_groups for t in g["tag"]}
        if not group_ids <= known_groups or not tag_ids <= known_tags:
            return {"errcode": 40068, "errmsg": "invalid tagid"}
        for group in self.tag_groups:
            group["tag"] = [t for t in group["tag"] if t["id"] not in tag_ids]
        self.tag_groups[:] = [
            g for g in self.tag_groups if g["group_id"] not in group_ids and g["tag"]
        ]
        return {"errcode": 0, "errmsg": "ok"}

    def _group_transfer(self, query: dict, body: dict) -> dict:
        ids, owner = body.get("chat_id_list") or [], body.get("new_owner")
        if not ids or len(ids) > 100 or not owner:
            return {"errcode": 40058, "errmsg": "1..100 chat ids and new_owner are required"}
        failed = []
        for chat_id in ids:
            chat = self.group_chats.get(chat_id)
            if chat is None:
                failed.append({"chat_id": chat_id, "errcode": 90001, "errmsg": "invalid chat"})
            else:
                chat["owner"] = owner
        return {"errcode": 0, "errmsg": "ok", "failed_chat_list": failed}

    def _group_onjob_transfer(self, query: dict, body: dict) -> dict:
        """An active owner's groups: 90504 when the new owner already owns the group."""
        ids, owner = body.get("chat_id_list") or [], body.get("new_owner")
        if not ids or len(ids) > 100 or not owner:
            return {"errcode": 40058, "errmsg": "1..100 chat ids and new_owner are required"}
        failed = []
        for chat_id in ids:
            chat = self.group_chats.get(chat_id)
            if chat is None:
                failed.append({"chat_id": chat_id, "errcode": 90001, "errmsg": "invalid chat"})
            elif chat.get("owner") == owner:
                failed.append({"chat_id": chat_id, "errcode": 90504, "errmsg": "owner unchanged"})
            else:
                chat["owner"] = owner
        return {"errcode": 0, "errmsg": "ok", "failed_chat_list": failed}

    def _add_msg_template(self, query: dict, body: dict) -> dict:
        if body.get("chat_type") == "group":
            return self._add_group_msg_template(body)
        sender, ids = body.get("sender"), body.get("external_userid") or []
        content = (body.get("text") or {}).get("content", "")
        if not sender or not ids or len(ids) > 10000 or len(content.encode()) > 4000:
            return {"errcode": 40058, "errmsg": "sender, 1..10000 external_userid, text"}
        friends, refused = [], []
        for eid in ids:
            follows = self.contacts.get(eid, {}).get("follow_user", [])
            (friends if any(f["userid"] == sender for f in follows) else refused).append(eid)
        msgid = f"msg{next(self.counter)}AAAA"
        self.mass_messages[msgid] = {
            "sender": sender,
            "text": content,
            "dispatching": True,
            "send": dict.fromkeys(friends, 0),
        }
        return {"errcode": 0, "errmsg": "ok", "fail_list": refused, "msgid": msgid}

    def _add_group_msg_template(self, body: dict) -> dict:
        """To customer groups: the sender is required; groups the sender does not own are
        answered status 2 once sent (they cannot receive the sender's message)."""
        sender, chats = body.get("sender"), body.get("chat_id_list") or []
        content = (body.get("text") or {}).get("content", "")
        if not sender or not chats or len(chats) > 2000 or len(content.encode()) > 4000:
            return {"errcode": 40058, "errmsg": "sender, 1..2000 chat_id_list, text"}
        msgid = f"msg{next(self.counter)}GROUP"
        self.mass_messages[msgid] = {
            "sender": sender,
            "text": content,
            "dispatching": True,
            "chat": True,
            "send": dict.fromkeys(chats, 0),
            "not_owned": {c for c in chats if self.group_chats.get(c, {}).get("owner") != sender},
        }
        return {"errcode": 0, "errmsg": "ok", "fail_list": [], "msgid": msgid}

    def _groupmsg_task(self, query: dict, body: dict) -> dict:
        task = self.mass_messages.get(body.get("msgid", ""))
        if task is None:
            return {"errcode": 40058, "errmsg": "invalid msgid"}
        done = not task["dispatching"]
        row = {"userid": task["sender"], "status": 2 if done else 0}
        return {"errcode": 0, "errmsg": "ok", "next_cursor": "", "task_list": [row]}

    def _groupmsg_send_result(self, query: dict, body: dict) -> dict:
        task = self.mass_messages.get(body.get("msgid", ""))
        if task is None or body.get("userid") != task["sender"]:
            return {"errcode": 40058, "errmsg": "invalid msgid or userid"}
        if task["dispatching"] and any(task["send"].values()):
            return {"errcode": 41063, "errmsg": "still dispatching"}
        key = "chat_id" if task.get("chat") else "external_userid"
        rows = [
            {key: eid, "userid": task["sender"], "status": status}
            | ({"send_time": 1764633600} if status == 1 else {})
            for eid, status in sorted(task["send"].items())
        ]
        start = int(body.get("cursor") or 0)
        page = rows[start : start + 2]  # small pages, so the tests follow the cursor
        cursor = str(start + 2) if start + 2 < len(rows) else ""
        return {"errcode": 0, "errmsg": "ok", "send_list": page, "next_cursor": cursor}

    # Callbacks -------------------------------------------------------------------------------

    def crypt(self) -> MessageCrypt:
        return MessageCrypt(token=CALLBACK_TOKEN, encoding_aes_key=AES_KEY, receive_id=CORP_ID)

    def signed_callback(
        self, xml: str, *, timestamp: int | None = None, nonce: str | None = None
    ) -> tuple[dict, str]:
        """The query parameters and POST body WeCom sends for the plaintext `xml`."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        nonce = nonce or f"n{next(self.counter)}"
        encrypted = self.crypt().encrypt(xml)
        body = (
            f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
        )
        query = {
            "msg_signature": signature(CALLBACK_TOKEN, str(timestamp), nonce, encrypted),
            "timestamp": str(timestamp),
            "nonce": nonce,
        }
        return query, body


ENDPOINTS = {
    "externalcontact/get_follow_user_list": FakeWecom._follow_users,
    "externalcontact/list": FakeWecom._list,
    "externalcontact/get": FakeWecom._get,
    "externalcontact/batch/get_by_user": FakeWecom._batch,
    "externalcontact/send_welcome_msg": FakeWecom._send_welcome,
    "externalcontact/get_corp_tag_list": FakeWecom._corp_tags,
    "externalcontact/groupchat/get": FakeWecom._group_chat,
    "externalcontact/groupchat/list": FakeWecom._group_chats,
    "externalcontact/add_contact_way": FakeWecom._add_contact_way,
    "externalcontact/update_contact_way": FakeWecom._update_contact_way,
    "externalcontact/del_contact_way": FakeWecom._del_contact_way,
    "externalcontact/transfer_customer": FakeWecom._transfer_customer,
    "externalcontact/transfer_result": FakeWecom._transfer_result,
    "externalcontact/resigned/transfer_customer": FakeWecom._transfer_customer,
    "externalcontact/resigned/transfer_result": FakeWecom._transfer_result,
    "externalcontact/add_msg_template": FakeWecom._add_msg_template,
    "externalcontact/mark_tag": FakeWecom._mark_tag,
    "externalcontact/add_corp_tag": FakeWecom._add_corp_tag,
    "externalcontact/edit_corp_tag": FakeWecom._edit_corp_tag,
    "externalcontact/del_corp_tag": FakeWecom._del_corp_tag,
    "externalcontact/groupchat/transfer": FakeWecom._group_transfer,
    "externalcontact/groupchat/onjob_transfer": FakeWecom._group_onjob_transfer,
    "externalcontact/get_groupmsg_task": FakeWecom._groupmsg_task,
    "externalcontact/get_groupmsg_send_result": FakeWecom._groupmsg_send_result,
}


def event_xml(event: str, change_type: str = "", created: int | None = None, **fields) -> str:
    """A callback message as WeCom writes it: CDATA strings, CreateTime a number."""
    parts = [
        f"<ToUserName><![CDATA[{CORP_ID}]]></ToUserName>",
        "<FromUserName><![CDATA[sys]]></FromUserName>",
        f"<CreateTime>{created or int(time.time())}</CreateTime>",
        "<MsgType><![CDATA[event]]></MsgType>",
        f"<Event><![CDATA[{event}]]></Event>",
    ]
    if change_type:
        parts.append(f"<ChangeType><![CDATA[{change_type}]]></ChangeType>")
    for name, value in fields.items():
        parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def serve() -> tuple[FakeWecom, ThreadingHTTPServer]:
    state = FakeWecom()

    class Handler(BaseHTTPRequestHandler):
        def _handle(self, method: str) -> None:
            split = urlsplit(self.path)
            path = split.path.removeprefix("/cgi-bin/")
            if path.startswith("qr/"):  # the contact way's QR image, as WeCom hosts it
                return self._qr_image(path)
            query = {k: v[0] for k, v in parse_qs(split.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = None
            if not isinstance(body, dict):
                status, payload = 200, {"errcode": 40058, "errmsg": "body is not a JSON object"}
            else:
                status, payload = state.answer(method, path, query, body)
            if status == 0:
                self.close_connection = True
                self.connection.close()  # the client sees a dropped connection
                return
            data = json.dumps(payload, ensure_ascii=False).encode() if payload else b"oops"
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _qr_image(self, path: str) -> None:
            config_id = path.removeprefix("qr/").removesuffix(".png")
            if config_id not in state.contact_ways:
                self.send_response(404)
                self.end_headers()
                return
            out = io.BytesIO()
            segno.make(f"https://work.weixin.qq.com/ca/{config_id}").save(out, kind="png")
            data = out.getvalue()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def log_message(self, *args) -> None:
            pass

    server = local_server.serve(Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/"
    return state, server
