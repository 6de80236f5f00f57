"""Writes of the content library: script categories, scripts, materials, tracked links and
their views.

Every rule is checked here (the forms only parse): script text may use known variables only,
article bodies are sanitised before they are stored.
"""

import secrets
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from functools import cache

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
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
from siyu.notifications.services import notify
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


# The public page's INSERT, written once: building it through the ORM cost more CPU than the
# database spent on it (benchmarks/radar.py).
_VIEW_COLUMNS = ("link", "material", "customer", "staff", "token", "opened_at", "seconds")


@cache
def _view_insert_sql() -> str:
    q = connection.ops.quote_name
    meta = MaterialView._meta
    columns = ", ".join(q(meta.get_field(name).column) for name in _VIEW_COLUMNS)
    marks = ", ".join(["%s"] * len(_VIEW_COLUMNS))
    return f"INSERT INTO {q(meta.db_table)} ({columns}) VALUES ({marks})"


def material_view_open(*, link: TrackedLink, now: datetime | None = None) -> str:
    """Record one open of `link` with a single INSERT (the public page's hot path) and return
    the visit's token. The event, the link's counters and the sharer's notification follow in
    a task after commit."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    opened_at = connection.ops.adapt_datetimefield_value(now or timezone.now())
    values = [link.pk, link.material_id, link.customer_id, link.staff_id, token, opened_at, 0]
    with connection.cursor() as cursor:
        cursor.execute(_view_insert_sql(), values)
    _after_commit(token, opened=True)
    return token


def material_view_read(*, code: str, token: str, seconds: int) -> MaterialView:
    """Raise the visit's reading time to `seconds` (clamped to 0..3600; it never goes down).

    Raises DomainError when the token is not a visit of this link.
    """
    view = MaterialView.objects.filter(token=token, link__code=code).first()
    if view is None:
        raise DomainError(_("Unknown visit."), field="token")
    seconds = max(0, min(int(seconds), MAX_SECONDS))
    # Conditional UPDATE: a late beacon with a smaller value never lowers the time.
    if MaterialView.objects.filter(pk=view.pk, seconds__lt=seconds).update(seconds=seconds):
        view.seconds = seconds
        _after_commit(view.token, opened=False)
    return view


def _after_commit(token: str, *, opened: bool) -> None:
    from siyu.content.tasks import material_view_followup_task

    # robust: a queue that is down is logged, and the customer still gets the page.
    transaction.on_commit(lambda: material_view_followup_task(token, opened), robust=True)


@transaction.atomic
def material_view_followup(*, token: str, opened: bool = True) -> None:
    """After an open or a longer read: the link's counters from its views, the customer's
    `material_viewed` event (once per visit), and the sharer's notification — a longer read
    (`opened=False`) only rewrites its text. Re-runnable."""
    view = (
        MaterialView.objects.select_related("link__channel", "material", "customer")
        .filter(token=token)
        .first()
    )
    if view is None:
        return
    link = view.link
    if view.customer is not None and view.customer.merged_into_id is not None:
        # A link to a customer merged since: the visit is the survivor's (tombstones point
        # straight at it).
        view.customer = Customer.objects.get(pk=view.customer.merged_into_id)
        MaterialView.objects.filter(pk=view.pk).update(customer=view.customer)
    _link_counters_refresh(link_ids=[link.pk])
    link.refresh_from_db(fields=["view_count", "seconds_read", "last_viewed_at"])
    if view.customer_id is not None:
        Event.objects.bulk_create(
            [
                Event(
                    customer_id=view.customer_id,
                    type=EVENT_TYPE,
                    occurred_at=view.opened_at,
                    properties={
                        "material_id": view.material_id,
                        "material_title": view.material.title,
                        "link_code": link.code,
                        "staff_id": link.staff_id,
                    },
                    source="tracked_link",
                    idempotency_key=f"{EVENT_TYPE}:{view.token}",
                )
            ],
            ignore_conflicts=True,
        )
    owner_id = link.staff_id or view.material.owner_id
    if owner_id is None:
        return
    # Staff read Chinese whatever language the worker runs in (like script text).
    with override("zh-hans"):
        if view.customer is not None:
            who = view.customer.name or _("Customer #%(id)s") % {"id": view.customer_id}
        elif link.channel is not None:
            who = _("A visitor from %(channel)s") % {"channel": link.channel.name}
        else:
            who = _("A visitor")
        title = _("%(who)s opened “%(title)s”, time %(n)s, read %(duration)s in all") % {
            "who": who,
            "title": view.material.title,
            "n": link.view_count,
            "duration": format_duration(link.seconds_read),
        }
    notify(
        staff_ids=[owner_id],
        kind=EVENT_TYPE,
        key=f"{EVENT_TYPE}:{link.pk}",
        title=title,
        url=reverse("content:material_detail", args=[view.material_id]),
        customer_id=view.customer_id,
        repeat=opened,
    )


def _link_counters_refresh(*, link_ids: list[int]) -> None:
    """Set the denormalised counters from the views: one UPDATE, right however often it runs."""
    views = MaterialView.objects.filter(link=OuterRef("pk")).order_by().values("link")
    TrackedLink.objects.filter(pk__in=link_ids).update(
        view_count=Coalesce(Subquery(views.annotate(n=Count("*")).values("n")), Value(0)),
        seconds_read=Coalesce(Subquery(views.annotate(s=Sum("seconds")).values("s")), Value(0)),
        last_viewed_at=Subquery(
            MaterialView.objects.filter(link=OuterRef("pk"))
            .order_by("-opened_at")
            .values("opened_at")[:1]
        ),
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
