"""Writes of the tag system: groups and tags, and tags put on or taken off customers.

Assignments work on sets of customer ids (already scoped by the caller): a few queries per
batch of ids, never one per customer. Every assignment and removal leaves a TagChange row.
"""

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.channels.wecom import corptags as wecom_tags
from siyu.core.bulk import bulk_insert
from siyu.core.errors import DomainError
from siyu.customers.models import Customer
from siyu.tags.models import CustomerTag, Source, Tag, TagChange, TagGroup
from siyu.webhooks.services import webhook_tags_changed

MAX_BULK = 100_000
BATCH = 2_000
ATTEMPTS = 3
NAME_LENGTH = 50
DESCRIPTION_LENGTH = 200
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


# Groups and tags


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise DomainError("a name is required", field="name")
    if len(name) > NAME_LENGTH:
        raise DomainError(f"the name is longer than {NAME_LENGTH} characters", field="name")
    return name


def _clean_group(name: str, dimension: str, order: int | None) -> tuple[str, str, int]:
    if dimension not in TagGroup.Dimension.values:
        raise DomainError(f"unknown dimension {dimension!r}", field="dimension")
    return _clean_name(name), dimension, max(order or 0, 0)


@transaction.atomic
def tag_group_create(
    *, name: str, dimension: str, exclusive: bool = False, order: int | None = 0
) -> TagGroup:
    """Raises DomainError for a missing, too long or taken name or an unknown dimension."""
    name, dimension, order = _clean_group(name, dimension, order)
    if TagGroup.objects.filter(name=name).exists():
        raise DomainError("a tag group with this name exists already", field="name")
    return TagGroup.objects.create(name=name, dimension=dimension, exclusive=exclusive, order=order)


@transaction.atomic
def tag_group_update(
    *, group: TagGroup, name: str, dimension: str, exclusive: bool, order: int | None
) -> TagGroup:
    """Making a group exclusive keeps existing multiple tags until the next assignment in it.

    Raises DomainError like tag_group_create.
    """
    name, dimension, order = _clean_group(name, dimension, order)
    if TagGroup.objects.filter(name=name).exclude(pk=group.pk).exists():
        raise DomainError("a tag group with this name exists already", field="name")
    if exclusive and group.tags.filter(rule__isnull=False).exists():
        raise DomainError(_exclusive_rules(), field="exclusive")
    renamed = name != group.name
    group.name, group.dimension, group.exclusive, group.order = name, dimension, exclusive, order
    group.save(update_fields=["name", "dimension", "exclusive", "order"])
    if renamed:
        wecom_tags.tag_group_renamed(group)  # a group mirrored in WeCom is renamed there
    return group


@transaction.atomic
def tag_group_delete(*, group: TagGroup, user=None) -> None:
    """Delete the group and its tags; their assignments end with a removal in the history."""
    wecom_tags.tag_group_deleting(group)
    for tag in list(group.tags.all()):
        tag_delete(tag=tag, user=user)
    group.delete()


def _clean_tag(
    name: str, colour: str, description: str, order: int | None
) -> tuple[str, str, str, int]:
    if not COLOUR.match(colour or ""):
        raise DomainError("the colour must look like #1677ff", field="colour")
    description = (description or "").strip()
    if len(description) > DESCRIPTION_LENGTH:
        raise DomainError(
            f"the description is longer than {DESCRIPTION_LENGTH} characters",
            field="description",
        )
    return _clean_name(name), colour.lower(), description, max(order or 0, 0)


# Refreshing a rule tag in an exclusive group would take the customers' other tags of the
# group away, and two rule tags of one group could take each other's members back and forth.
def _exclusive_rules() -> str:
    return _("A group with rule tags cannot allow only one tag per customer.")


def _tag_ids_in(node: Any) -> Iterator[int]:
    if isinstance(node, dict):
        if isinstance(node.get("tags"), dict):
            for ids in node["tags"].values():
                yield from ids
        for key in ("all", "any"):
            for child in node.get(key, []):
                yield from _tag_ids_in(child)
        yield from _tag_ids_in(node.get("not"))


def _clean_rule(rule: Any, group: TagGroup, tag_pk: int | None) -> Any:
    """None (a manual tag) or a valid segment definition that does not use the tag itself."""
    # Imported here: the segment language imports the tag models.
    from siyu.segments.dsl import SegmentError, validate_definition

    if rule is None:
        return None
    try:
        validate_definition(rule)
    except SegmentError as error:
        raise DomainError(error.message, field="rule") from None
    if group.exclusive:
        raise DomainError(_exclusive_rules(), field="rule")
    if tag_pk is not None and tag_pk in set(_tag_ids_in(rule)):
        raise DomainError(_("A rule cannot depend on its own tag."), field="rule")
    return rule


@transaction.atomic
def tag_create(
    *,
    group: TagGroup,
    name: str,
    colour: str = "#1677ff",
    description: str = "",
    order: int | None = 0,
    rule: Any = None,
) -> Tag:
    """A manual tag, or a rule tag when `rule` is a segment definition (docs/tags.md).

    Raises DomainError for a bad name, colour or description, a name taken in the group, or
    a rule that is invalid (the message names its JSON path) or sits in an exclusive group.
    """
    name, colour, description, order = _clean_tag(name, colour, description, order)
    rule = _clean_rule(rule, group, None)
    if Tag.objects.filter(group=group, name=name).exists():
        raise DomainError("this group has a tag with this name already", field="name")
    tag = Tag.objects.create(
        group=group, name=name, colour=colour, description=description, order=order, rule=rule
    )
    wecom_tags.tag_created(tag)  # in a group mirrored in WeCom, created there too
    return tag


@transaction.atomic
def tag_update(
    *,
    tag: Tag,
    name: str,
    colour: str,
    description: str,
    order: int | None,
    rule: Any = None,
) -> Tag:
    """Giving a tag a rule hands its current assignments to the rule: the next refresh keeps
    those that match and removes the others. Raises DomainError like tag_create."""
    name, colour, description, order = _clean_tag(name, colour, description, order)
    rule = _clean_rule(rule, tag.group, tag.pk)
    if Tag.objects.filter(group_id=tag.group_id, name=name).exclude(pk=tag.pk).exists():
        raise DomainError("this group has a tag with this name already", field="name")
    if rule is not None and tag.rule is None:
        CustomerTag.objects.filter(tag_id=tag.pk).update(source=Source.RULE)
    renamed = name != tag.name
    tag.name, tag.colour, tag.description, tag.order = name, colour, description, order
    tag.rule = rule
    tag.save(update_fields=["name", "colour", "description", "order", "rule"])
    if renamed:
        wecom_tags.tag_renamed(tag)
    return tag


@transaction.atomic
def tag_delete(*, tag: Tag, user=None) -> int:
    """Delete the tag; each customer who had it gets a removal in the history (one INSERT …
    SELECT). Returns how many customers lost it."""
    history, links = (connection.ops.quote_name(m._meta.db_table) for m in (TagChange, CustomerTag))
    at = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {history} (customer_id, tag_id, tag_name, action, source, by_id, at) "
            f"SELECT customer_id, NULL, %s, %s, %s, %s, %s FROM {links} WHERE tag_id = %s",
            [
                tag.name,
                TagChange.Action.REMOVED,
                Source.MANUAL,
                user.pk if user else None,
                at,
                tag.pk,
            ],
        )
    removed, _ = CustomerTag.objects.filter(tag_id=tag.pk).delete()
    wecom_tags.tag_deleting(tag)
    tag.delete()
    return removed


# Assignments


def _clean_ids(customer_ids: Iterable[object]) -> list[int]:
    try:
        ids = sorted({int(pk) for pk in customer_ids})  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise DomainError("customer ids must be whole numbers") from None
    if len(ids) > MAX_BULK:
        raise DomainError(
            f"at most {MAX_BULK:,} customers can be tagged at once; narrow the selection"
        )
    return ids


def _clean_source(source: str, tag: Tag) -> str:
    if source not in Source.values:
        raise DomainError(f"unknown tag source {source!r}")
    if tag.rule is not None:
        message = _(
            "%(tag)s is a rule tag: its customers come from its rule and are refreshed "
            "automatically, so it cannot be added or removed by hand."
        )
        raise DomainError(message % {"tag": tag.name}, field="tag")
    return source


def _batches(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _record(rows: Iterable[tuple[int, int | None, str, str]], source: str, by_id, at) -> None:
    bulk_insert(
        TagChange,
        ["customer_id", "tag_id", "tag_name", "action", "source", "by_id", "at"],
        ((customer, tag, name, action, source, by_id, at) for customer, tag, name, action in rows),
    )


def _remove(ids: Sequence[int], tag_ids: Sequence[int], source: str, by_id, at) -> int:
    names = dict(Tag.objects.filter(pk__in=tag_ids).values_list("pk", "name"))
    removed: list[tuple[int, int, int]] = []
    for batch in _batches(ids):
        rows = list(
            CustomerTag.objects.filter(customer_id__in=batch, tag_id__in=tag_ids).values_list(
                "pk", "customer_id", "tag_id"
            )
        )
        if rows:
            CustomerTag.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
            removed.extend(rows)
    _record(
        ((customer, tag, names[tag], TagChange.Action.REMOVED) for _, customer, tag in removed),
        source,
        by_id,
        at,
    )
    webhook_tags_changed(added=False, pairs=[r[1:] for r in removed], names=names, source=source)
    wecom_tags.tags_changed(
        tag_ids={r[2] for r in removed}, customer_ids={r[1] for r in removed}, source=source
    )
    return len(removed)


def _with_retries(work):
    # Two requests tagging the same customers at once: the loser's insert breaks the unique
    # constraint and rolls back; run again, and it finds the rows the winner wrote.
    for attempt in range(ATTEMPTS):
        try:
            with transaction.atomic():
                return work()
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def tags_assign(*, customer_ids: Iterable[int], tag: Tag, source: str, user=None) -> int:
    """Put `tag` on every customer in `customer_ids` that lacks it; returns how many got it.

    In an exclusive group the customers' other tags of the group are removed first. The ids
    must already be scoped to what the caller may touch. Raises DomainError for more than
    MAX_BULK ids, an id that is not a number, an unknown source, or a rule tag (rule tags
    change only through rule_tag_refresh).
    """
    ids = _clean_ids(customer_ids)
    source = _clean_source(source, tag)
    by_id = user.pk if user else None

    def work() -> int:
        at = timezone.now()
        group = TagGroup.objects.only("exclusive").get(pk=tag.group_id)
        if group.exclusive:
            others = list(
                Tag.objects.filter(group_id=group.pk)
                .exclude(pk=tag.pk)
                .values_list("pk", flat=True)
            )
            if others:
                _remove(ids, others, source, by_id, at)
        missing: list[int] = []
        for batch in _batches(ids):
            have = set(
                CustomerTag.objects.filter(tag_id=tag.pk, customer_id__in=batch).values_list(
                    "customer_id", flat=True
                )
            )
            missing.extend(pk for pk in batch if pk not in have)
        bulk_insert(
            CustomerTag,
            ["customer_id", "tag_id", "source", "added_by_id", "added_at"],
            ((pk, tag.pk, source, by_id, at) for pk in missing),
        )
        _record(
            ((pk, tag.pk, tag.name, TagChange.Action.ADDED) for pk in missing), source, by_id, at
        )
        pairs = [(pk, tag.pk) for pk in missing]
        webhook_tags_changed(added=True, pairs=pairs, names={tag.pk: tag.name}, source=source)
        wecom_tags.tags_changed(tag_ids=[tag.pk], customer_ids=missing, source=source)
        return len(missing)

    return _with_retries(work)


def tags_remove(*, customer_ids: Iterable[int], tag: Tag, source: str, user=None) -> int:
    """Take `tag` off the customers that have it; returns how many lost it.

    Raises DomainError like tags_assign.
    """
    ids = _clean_ids(customer_ids)
    source = _clean_source(source, tag)
    by_id = user.pk if user else None
    with transaction.atomic():
        return _remove(ids, [tag.pk], source, by_id, timezone.now())


def merge_customer_tags(survivor_id: int, absorbed_ids: Sequence[int]) -> None:
    """Before a merge moves the rows: keep one assignment per tag, the earliest."""
    rows = CustomerTag.objects.filter(customer_id__in=[survivor_id, *absorbed_ids]).order_by(
        "tag_id", "added_at", "id"
    )
    seen: set[int] = set()
    drop: list[int] = []
    for pk, tag_id in rows.values_list("pk", "tag_id"):
        if tag_id in seen:
            drop.append(pk)
        seen.add(tag_id)
    if drop:
        CustomerTag.objects.filter(pk__in=drop).delete()


# Rule tags

MEMBERS = "tags_rule_members"  # a temporary table: the rule's members, computed once


@dataclass(frozen=True)
class RuleRefresh:
    added: int
    removed: int


@transaction.atomic
def rule_tag_refresh(*, tag: Tag, as_of: datetime | None = None) -> RuleRefresh:
    """Make the tag's members exactly the live customers its rule selects (all customers, not
    a viewer's scope), applying only the difference: new members get the tag, former members
    lose it, and each change leaves a TagChange with source "rule". A few statements over sets;
    a second refresh with the same data changes nothing.

    Raises DomainError when the tag has no rule or its rule no longer compiles.
    """
    # Imported here: the segment language imports the tag models.
    from siyu.segments.dsl import SegmentError, compile_definition

    # Locks the tag: two refreshes of one tag at once would insert the same members twice.
    tag = Tag.objects.select_for_update().get(pk=tag.pk)
    if tag.rule is None:
        raise DomainError(f"{tag.name} has no rule", field="rule")
    try:
        matching = Customer.objects.live().filter(compile_definition(tag.rule, as_of=as_of))
    except SegmentError as error:
        raise DomainError(error.message, field="rule") from None
    members_sql, members_params = matching.order_by().values("pk").query.sql_with_params()
    history, links = (connection.ops.quote_name(m._meta.db_table) for m in (TagChange, CustomerTag))
    now = timezone.now()
    at = connection.ops.adapt_datetimefield_value(now)
    new = (
        f"FROM {MEMBERS} m WHERE NOT EXISTS "
        f"(SELECT 1 FROM {links} l WHERE l.tag_id = %s AND l.customer_id = m.id)"
    )
    gone = (
        f"FROM {links} l WHERE l.tag_id = %s AND l.source = %s "
        f"AND NOT EXISTS (SELECT 1 FROM {MEMBERS} m WHERE m.id = l.customer_id)"
    )
    record = f"INSERT INTO {history} (customer_id, tag_id, tag_name, action, source, by_id, at) "
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {MEMBERS}")
        cursor.execute(f"CREATE TEMPORARY TABLE {MEMBERS} (id BIGINT PRIMARY KEY)")
        cursor.execute(f"INSERT INTO {MEMBERS} (id) {members_sql}", members_params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {MEMBERS}")  # temp tables get no statistics
        # History first: once the links exist, the new members can no longer be told apart.
        cursor.execute(
            f"{record}SELECT m.id, %s, %s, %s, %s, NULL, %s {new}",
            [tag.pk, tag.name, TagChange.Action.ADDED, Source.RULE, at, tag.pk],
        )
        cursor.execute(
            f"INSERT INTO {links} (customer_id, tag_id, source, added_by_id, added_at) "
            f"SELECT m.id, %s, %s, NULL, %s {new}",
            [tag.pk, Source.RULE, at, tag.pk],
        )
        added = cursor.rowcount
        cursor.execute(
            f"{record}SELECT l.customer_id, %s, %s, %s, %s, NULL, %s {gone}",
            [tag.pk, tag.name, TagChange.Action.REMOVED, Source.RULE, at, tag.pk, Source.RULE],
        )
        cursor.execute(
            f"DELETE FROM {links} WHERE id IN (SELECT l.id {gone})", [tag.pk, Source.RULE]
        )
        removed = cursor.rowcount
        cursor.execute(f"DROP TABLE {MEMBERS}")
    tag.refreshed_at, tag.last_added, tag.last_removed = now, added, removed
    tag.save(update_fields=["refreshed_at", "last_added", "last_removed"])
    return RuleRefresh(added, removed)
