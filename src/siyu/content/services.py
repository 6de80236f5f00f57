"""Writes of the content library: script categories, scripts, materials, tracked links and
their views.

Every rule is checked here (the forms only parse): script text may use known variables only,
article bodies are sanitised before they are stored.
"""

import secrets
import time
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, linebreaks
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import override

from siyu.commerce.models import Order
from siyu.content.formatting import VARIABLES, braced, format_duration, unknown_variables
from siyu.content.models import (
    Material,
    MaterialView,
    Script,
    ScriptCategory,
    TrackedLink,
)
from siyu.content.sanitise import sanitise_html
from siyu.content.selectors import CASE_ORDER_STATUSES, tracked_link_cache_clear
from siyu.core.audit import audit_record
from siyu.core.errors import DomainError
from siyu.core.models import AuditLog
from siyu.customers.models import Channel, Customer
from siyu.events.models import Event
from siyu.notifications.services import Notice, notify_each
from siyu.org.models import Staff


def _required(value: str, field: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value:
        raise DomainError(_("This field is required."), field=field)
    if len(value) > max_length:
        raise DomainError(_("At most %(n)s characters.") % {"n": max_length}, field=field)
    return value


@transaction.atomic
def script_category_create(*, name: str, order: int | None = 0) -> ScriptCategory:
    """A brand's own category. Raises DomainError for a missing or taken name."""
    name = _required(name, "name", 50)
    if ScriptCategory.objects.filter(name=name).exists():
        raise DomainError(_("A category with this name exists already."), field="name")
    return ScriptCategory.objects.create(name=name, order=max(order or 0, 0))


def _clean_script_body(body: str) -> str:
    body = _required(body, "body", 2000)
    unknown = unknown_variables(body)
    if unknown:
        raise DomainError(
            _("Unknown variables: %(names)s. Known variables: %(known)s.")
            % {
                "names": braced(unknown),
                "known": braced(VARIABLES),
            },
            field="body",
        )
    return body


def _script_fields(data: dict) -> dict:
    material = data.get("material")
    if material is not None and material.status != Material.Status.PUBLISHED:
        raise DomainError(_("Only a published material can be attached."), field="material")
    return {
        "category": data["category"],
        "title": _required(data.get("title"), "title", 100),
        "body": _clean_script_body(data.get("body")),
        "material": material,
        "miniprogram_appid": (data.get("miniprogram_appid") or "").strip(),
        "miniprogram_path": (data.get("miniprogram_path") or "").strip(),
        "miniprogram_title": (data.get("miniprogram_title") or "").strip(),
    }


@transaction.atomic
def script_create(*, created_by: Staff | None, image: UploadedFile | None = None, **data) -> Script:
    """Raises DomainError for a missing title or text, an unknown variable in the text, or an
    unpublished material."""
    script = Script(created_by=created_by, **_script_fields(data))
    if image:
        script.image = image
    script.save()
    return script


@transaction.atomic
def script_update(*, script: Script, image: UploadedFile | None = None, **data) -> Script:
    """Raises DomainError like script_create. A new image replaces the old one."""
    for field, value in _script_fields(data).items():
        setattr(script, field, value)
    if image:
        script.image = image
    script.save()
    return script


def script_set_active(*, script: Script, active: bool) -> None:
    Script.objects.filter(pk=script.pk).update(active=active)


def script_used(*, script_id: int) -> int:
    """Count one use (a copy from a profile) in one UPDATE, safe under concurrent copies.
    Returns 0 for an unknown or archived script."""
    return Script.objects.filter(pk=script_id, active=True).update(usage_count=F("usage_count") + 1)


def _material_fields(data: dict, *, has_image: bool, has_file: bool) -> dict:
    kind = data.get("kind")
    if kind not in Material.Kind.values:
        raise DomainError(_("Unknown kind."), field="kind")
    status = data.get("status") or Material.Status.DRAFT
    if status not in Material.Status.values:
        raise DomainError(_("Unknown status."), field="status")
    body = sanitise_html(data.get("body") or "")
    url = (data.get("url") or "").strip()
    if kind == Material.Kind.ARTICLE and not body:
        raise DomainError(_("An article needs a body."), field="body")
    if kind == Material.Kind.POSTER and not has_image:
        raise DomainError(_("A poster needs an image."), field="image")
    if kind == Material.Kind.PRODUCT and not url:
        raise DomainError(_("A product page needs its link."), field="url")
    if kind == Material.Kind.FILE and not has_file:
        raise DomainError(_("Upload the file."), field="file")
    if kind == Material.Kind.CASE and not body:
        raise DomainError(_("A case needs the customer's words."), field="body")
    tags = ", ".join(t for t in (s.strip() for s in (data.get("tags") or "").split(",")) if t)
    if len(tags) > 200:
        raise DomainError(_("At most %(n)s characters.") % {"n": 200}, field="tags")
    return {
        "kind": kind,
        "title": _required(data.get("title"), "title", 100),
        "summary": (data.get("summary") or "").strip()[:300],
        "body": body,
        "url": url,
        "tags": tags,
        "status": status,
        "owner": data.get("owner"),
    }


@transaction.atomic
def material_create(
    *, image: UploadedFile | None = None, file: UploadedFile | None = None, **data
) -> Material:
    """Raises DomainError for a missing title or the piece its kind needs (an article's body, a
    poster's image, a product's link, a file). The body is stored sanitised."""
    material = Material(**_material_fields(data, has_image=bool(image), has_file=bool(file)))
    if image:
        material.image = image
    if file:
        material.file = file
    material.save()
    return material


@transaction.atomic
def material_update(
    *,
    material: Material,
    image: UploadedFile | None = None,
    file: UploadedFile | None = None,
    **data,
) -> Material:
    """Raises DomainError like material_create; uploads left empty keep the current ones."""
    fields = _material_fields(
        data, has_image=bool(image or material.image), has_file=bool(file or material.file)
    )
    for field, value in fields.items():
        setattr(material, field, value)
    if image:
        material.image = image
    if file:
        material.file = file
    material.save()
    # This process's public pages show the change at once; other processes within seconds.
    tracked_link_cache_clear()
    return material


# Tracked links and their views

# token_urlsafe(7) is 10 characters carrying 56 random bits: short enough to type, too many
# to guess one that was shared with somebody else.
CODE_BYTES = 7
TOKEN_BYTES = 16
MAX_SECONDS = 3600
EVENT_TYPE = "material_viewed"


def _new_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def tracked_link_for(
    *,
    material: Material,
    staff: Staff | None,
    customer: Customer | None = None,
    channel: Channel | None = None,
) -> TrackedLink:
    """The one link for (material, staff, customer or channel), created on first share.

    Raises DomainError for an unpublished material or for both a customer and a channel.
    Safe under concurrent shares: the loser of the insert race reads the winner's row.
    """
    if customer is not None and channel is not None:
        raise DomainError(_("Share with a customer or a channel, not both."), field="channel")
    if material.status != Material.Status.PUBLISHED:
        raise DomainError(_("Only a published material can be shared."), field="material")
    target = {"material": material, "staff": staff, "customer": customer, "channel": channel}
    for _attempt in range(3):
        link = TrackedLink.objects.filter(**target).first()
        if link is not None:
            return link
        try:
            with transaction.atomic():
                return TrackedLink.objects.create(code=_new_code(), **target)
        except IntegrityError:
            continue  # a concurrent share won (or, rarely, the code was taken): read again
    raise DomainError(_("The link could not be created; try again."))


def tracked_links_for_customer(
    *, materials: Iterable[Material], staff: Staff | None, customer: Customer
) -> dict[int, TrackedLink]:
    """The links of several published materials for one (staff, customer), by material id:
    one SELECT, plus one INSERT and one SELECT when some are new (the profile's script panel).
    """
    published = {m.pk for m in materials if m.status == Material.Status.PUBLISHED}
    if not published:
        return {}
    mine = TrackedLink.objects.filter(staff=staff, customer=customer, channel=None)
    found = {link.material_id: link for link in mine.filter(material_id__in=published)}
    missing = published - found.keys()
    if missing:
        TrackedLink.objects.bulk_create(
            [
                TrackedLink(code=_new_code(), material_id=pk, staff=staff, customer=customer)
                for pk in sorted(missing)
            ],
            # A concurrent render created the same ones: theirs are read back below.
            ignore_conflicts=True,
        )
        found.update({link.material_id: link for link in mine.filter(material_id__in=missing)})
    return found


def tracked_links_for_recipients(
    *, material: Material, recipients: Iterable[tuple[int | None, int]]
) -> dict[tuple[int | None, int], TrackedLink]:
    """The links of one published material for many (staff id, customer id) pairs, as a
    campaign sends it: one SELECT, plus one INSERT and one SELECT when some are new."""
    wanted = set(recipients)
    if not wanted or material.status != Material.Status.PUBLISHED:
        return {}

    def read(pairs) -> dict[tuple[int | None, int], TrackedLink]:
        links = TrackedLink.objects.filter(
            material=material, channel=None, customer_id__in={c for _, c in pairs}
        )
        by_pair = {(link.staff_id, link.customer_id): link for link in links}
        return {pair: by_pair[pair] for pair in pairs if pair in by_pair}

    found = read(wanted)
    missing = wanted - found.keys()
    if missing:
        TrackedLink.objects.bulk_create(
            [
                TrackedLink(code=_new_code(), material=material, staff_id=s, customer_id=c)
                for s, c in sorted(missing, key=lambda pair: (pair[1], pair[0] or 0))
            ],
            ignore_conflicts=True,  # a concurrent sender or share made some: read them back
        )
        found.update(read(missing))
    return found


def public_link_url(link: TrackedLink) -> str:
    """Where customers open a link, outside a request (campaign messages): SIYU_PUBLIC_URL."""
    return f"{settings.SIYU_PUBLIC_URL.rstrip('/')}/m/{link.code}"


# The public page's INSERT, written once: building it through the ORM cost more CPU than the
# database spent on it (benchmarks/radar.py).
_VIEW_COLUMNS = ("link", "material", "customer", "staff", "token", "opened_at", "seconds")


@cache
def _view_insert_sql() -> str:
    q = connection.ops.quote_name
    meta = MaterialView._meta
    columns = ", ".join(q(meta.get_field(name).column) for name in (*_VIEW_COLUMNS, "follow_up"))
    marks = ", ".join(["%s"] * len(_VIEW_COLUMNS))
    return f"INSERT INTO {q(meta.db_table)} ({columns}) VALUES ({marks}, {FollowUp.OPEN:d})"


FollowUp = MaterialView.FollowUp
# How long after an open the batched follow-up runs (a worker picks up every view pending by
# then); a periodic sweep each minute catches any that a lost kick left behind.
FOLLOW_UP_DELAY = 2.0
FOLLOW_UP_BATCH = 500
_next_kick = 0.0


def _asynchronous_commit() -> bool:
    """Whether this INSERT may commit without waiting for the WAL flush: on PostgreSQL, outside
    any transaction (the page runs in autocommit), with Django's client-side binding, which
    sends the SET and the INSERT as one message and so as one implicit transaction."""
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and not connection.settings_dict["OPTIONS"].get("server_side_binding")
    )


def material_view_open(*, link: TrackedLink, now: datetime | None = None) -> str:
    """Record one open of `link` with a single INSERT (the public page's hot path) and return
    the visit's token. The event, the link's counters and the sharer's notification follow in
    the batched follow-up, within about FOLLOW_UP_DELAY seconds.

    On PostgreSQL the INSERT commits asynchronously: the page does not wait for the disk
    (~1 ms instead of the flush, 5-8 ms on a busy server). A view is a measurement, not a
    business record: a server crash may lose the views of its last fraction of a second
    (3 × wal_writer_delay at most), never leaves half of one, and loses nothing else."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    opened_at = connection.ops.adapt_datetimefield_value(now or timezone.now())
    values = [link.pk, link.material_id, link.customer_id, link.staff_id, token, opened_at, 0]
    sql = _view_insert_sql()
    if _asynchronous_commit():
        sql = f"SET LOCAL synchronous_commit TO OFF; {sql}"
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
    _kick_follow_up()
    return token


def material_view_read(*, code: str, token: str, seconds: int) -> MaterialView:
    """Raise the visit's reading time to `seconds` (clamped to 0..3600; it never goes down).

    Raises DomainError when the token is not a visit of this link.
    """
    view = MaterialView.objects.filter(token=token, link__code=code).first()
    if view is None:
        raise DomainError(_("Unknown visit."), field="token")
    seconds = max(0, min(int(seconds), MAX_SECONDS))
    # Conditional UPDATE: a late beacon with a smaller value never lowers the time. An open
    # not yet followed up stays an open.
    raised = MaterialView.objects.filter(pk=view.pk, seconds__lt=seconds).update(
        seconds=seconds,
        follow_up=Case(
            When(follow_up=FollowUp.DONE, then=Value(FollowUp.READ)),
            default=F("follow_up"),
            output_field=MaterialView._meta.get_field("follow_up"),
        ),
    )
    if raised:
        view.seconds = seconds
        _kick_follow_up()
    return view


def _kick_follow_up() -> None:
    """Have a worker run the follow-up of pending views soon: one task per process every
    FOLLOW_UP_DELAY seconds at most, whatever the number of opens (no task per view)."""
    global _next_kick
    from huey.contrib.djhuey import HUEY

    from siyu.content.tasks import material_views_follow_up_task

    if HUEY.immediate:
        # Tests and single-process setups: at once, after the view is committed.
        transaction.on_commit(material_views_follow_up_task, robust=True)
        return
    now = time.monotonic()
    if now < _next_kick:
        return  # a task is due within FOLLOW_UP_DELAY and will see this view
    _next_kick = now + FOLLOW_UP_DELAY
    # robust: a queue that is down is logged, the customer still gets the page, and the
    # minute's sweep follows the view up.
    transaction.on_commit(
        lambda: material_views_follow_up_task.schedule(delay=FOLLOW_UP_DELAY), robust=True
    )


def material_views_follow_up(*, batch: int = FOLLOW_UP_BATCH) -> int:
    """Follow up every pending view, `batch` at a time; returns how many. Re-runnable, and
    safe to run in several workers at once (PostgreSQL hands each its own rows)."""
    done = 0
    while count := _follow_up_batch(batch):
        done += count
    return done


@transaction.atomic
def _follow_up_batch(batch: int) -> int:
    """One set of pending views: their new opens and reading time added to their links'
    counters, a `material_viewed` event per new open with a customer (once per visit), and one
    notification per link for its sharer (or the material's owner) counting the new opens — a
    longer read only rewrites the text. A fixed number of statements whatever the batch holds.
    """
    claimed = dict(
        MaterialView.objects.filter(follow_up__gt=FollowUp.DONE)
        .order_by("pk")
        .select_for_update(skip_locked=True)
        .values_list("pk", "follow_up")[:batch]
    )
    if not claimed:
        return 0
    views = MaterialView.objects.filter(pk__in=list(claimed))
    # A link to a customer merged since: the visit is the survivor's (tombstones point
    # straight at it).
    views.filter(customer__merged_into__isnull=False).update(
        customer=Subquery(
            Customer.objects.filter(pk=OuterRef("customer_id")).values("merged_into_id")[:1]
        )
    )
    rows = list(
        views.order_by("pk").values(
            "pk",
            "token",
            "link_id",
            "opened_at",
            "material_id",
            "customer_id",
            "customer__name",
            "material__title",
            "material__owner_id",
            "link__code",
            "link__staff_id",
            "link__channel__name",
            "seconds",
            "seconds_counted",
        )
    )
    views.update(follow_up=FollowUp.DONE, seconds_counted=F("seconds"))
    link_ids = sorted({r["link_id"] for r in rows})
    _link_counters_add(rows, claimed)
    totals = {
        pk: (n, s)
        for pk, n, s in TrackedLink.objects.filter(pk__in=link_ids).values_list(
            "pk", "view_count", "seconds_read"
        )
    }
    Event.objects.bulk_create(
        [
            Event(
                customer_id=r["customer_id"],
                type=EVENT_TYPE,
                occurred_at=r["opened_at"],
                properties={
                    "material_id": r["material_id"],
                    "material_title": r["material__title"],
                    "link_code": r["link__code"],
                    "staff_id": r["link__staff_id"],
                },
                source="tracked_link",
                idempotency_key=f"{EVENT_TYPE}:{r['token']}",
            )
            for r in rows
            if r["customer_id"] is not None and claimed[r["pk"]] == FollowUp.OPEN
        ],
        ignore_conflicts=True,
    )
    _notify_sharers(rows, claimed, totals)
    return len(claimed)


def _notify_sharers(rows: list[dict], claimed: dict[int, int], totals: dict) -> None:
    # Per link: its new opens, and the latest view for who opened it.
    opens: dict[int, int] = {}
    latest: dict[int, dict] = {}
    for r in rows:
        opens[r["link_id"]] = opens.get(r["link_id"], 0) + (claimed[r["pk"]] == FollowUp.OPEN)
        latest[r["link_id"]] = r
    opened, read = [], []
    # Staff read Chinese whatever language the worker runs in (like script text).
    with override("zh-hans"):
        for link_id, r in latest.items():
            owner_id = r["link__staff_id"] or r["material__owner_id"]
            if owner_id is None:
                continue
            if r["customer_id"] is not None:
                who = r["customer__name"] or _("Customer #%(id)s") % {"id": r["customer_id"]}
            elif r["link__channel__name"] is not None:
                who = _("A visitor from %(channel)s") % {"channel": r["link__channel__name"]}
            else:
                who = _("A visitor")
            count, seconds = totals[link_id]
            title = _("%(who)s opened “%(title)s”, time %(n)s, read %(duration)s in all") % {
                "who": who,
                "title": r["material__title"],
                "n": count,
                "duration": format_duration(seconds),
            }
            notice = Notice(
                staff_id=owner_id,
                key=f"{EVENT_TYPE}:{link_id}",
                title=title,
                url=reverse("content:material_detail", args=[r["material_id"]]),
                customer_id=r["customer_id"],
                times=opens[link_id],
            )
            (opened if opens[link_id] else read).append(notice)
    notify_each(kind=EVENT_TYPE, notices=opened)
    notify_each(kind=EVENT_TYPE, notices=read, repeat=False)


def material_view_followup(*, token: str, opened: bool = True) -> None:
    """The follow-up of one visit, for tasks queued before follow-ups were batched: marks the
    view pending and runs the batched follow-up."""
    state = FollowUp.OPEN if opened else FollowUp.READ
    MaterialView.objects.filter(token=token, follow_up__lt=state).update(follow_up=state)
    material_views_follow_up()


def _link_counters_add(rows: list[dict], claimed: dict[int, int]) -> None:
    """Add a batch's new opens and reading time to their links' counters, in one UPDATE whose
    cost does not grow with a link's earlier views (a shared poster gathers hundreds of
    thousands). Each view counts once: the batch holds its views locked, an open is counted
    when it is followed up, and of a view's seconds only what exceeds seconds_counted."""
    opens: dict[int, int] = {}
    seconds: dict[int, int] = {}
    latest: dict[int, datetime] = {}
    for r in rows:
        link = r["link_id"]
        seconds[link] = seconds.get(link, 0) + r["seconds"] - r["seconds_counted"]
        if claimed[r["pk"]] == FollowUp.OPEN:
            opens[link] = opens.get(link, 0) + 1
            latest[link] = max(latest.get(link, r["opened_at"]), r["opened_at"])

    def per_link(values: dict, default):
        whens = [When(pk=link, then=Value(value)) for link, value in values.items()]
        return Case(*whens, default=default) if whens else default

    newest = per_link(latest, F("last_viewed_at"))
    TrackedLink.objects.filter(pk__in=list(seconds)).update(
        view_count=F("view_count") + per_link(opens, Value(0)),
        seconds_read=F("seconds_read") + per_link(seconds, Value(0)),
        # NULL until the first open; SQLite's MAX() is NULL when either side is.
        last_viewed_at=Greatest(Coalesce(F("last_viewed_at"), newest), newest),
    )


# Case materials (案例素材)


@transaction.atomic
def case_material_create(
    *,
    order: Order,
    owner: Staff | None,
    actor,
    title: str,
    quote: str,
    customer_label: str = "",
    products: str = "",
    amount: Decimal | None = None,
    image: UploadedFile | None = None,
    ip: str | None = None,
) -> Material:
    """A draft case material (testimonial) made from a delivered order; audited.

    Raises DomainError when the order did not reach the customer (not completed or partly
    refunded), or the title or the customer's words are missing.
    """
    if order.status not in CASE_ORDER_STATUSES:
        raise DomainError(
            _("Only a completed or partially refunded order can become a case."), field="order"
        )
    quote = (quote or "").strip()
    if not quote:
        raise DomainError(_("Write what the customer said."), field="quote")
    customer_label = (customer_label or "").strip()[:50]
    products = (products or "").strip()[:300]
    facts = " · ".join(p for p in (products, f"¥{amount}" if amount is not None else "") if p)
    body = format_html(
        "<blockquote>{}</blockquote>{}{}",
        # linebreaks escapes the text itself and returns plain str: mark it so it is not
        # escaped twice.
        mark_safe(linebreaks(quote, autoescape=True)),
        format_html("<p>— {}</p>", customer_label) if customer_label else "",
        format_html("<p>{}</p>", facts) if facts else "",
    )
    material = Material(
        kind=Material.Kind.CASE,
        title=_required(title, "title", 100),
        summary=" · ".join(p for p in (customer_label, facts) if p)[:300],
        body=sanitise_html(body),
        owner=owner,
        status=Material.Status.DRAFT,
        source_order=order,
    )
    if image:
        material.image = image
    material.save()
    audit_record(
        actor=actor,
        action=AuditLog.Action.CREATE,
        target=material,
        summary=f"case material from order {order.external_id}",
        detail={"order_id": order.pk, "customer_id": order.customer_id},
        ip=ip,
    )
    return material
