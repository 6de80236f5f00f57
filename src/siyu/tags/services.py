"""Writes of the tag system: groups and tags, and tags put on or taken off customers.

Assignments work on sets of customer ids (already scoped by the caller): a few queries per
batch of ids, never one per customer. Every assignment and removal leaves a TagChange row.
"""

import re
from collections.abc import Iterable, Iterator, Sequence

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from siyu.core.bulk import bulk_insert
from siyu.core.errors import DomainError
from siyu.tags.models import CustomerTag, Source, Tag, TagChange, TagGroup

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
    group.name, group.dimension, group.exclusive, group.order = name, dimension, exclusive, order
    group.save(update_fields=["name", "dimension", "exclusive", "order"])
    return group


@transaction.atomic
def tag_group_delete(*, group: TagGroup, user=None) -> None:
    """Delete the group and its tags; their assignments end with a removal in the history."""
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


@transaction.atomic
def tag_create(
    *,
    group: TagGroup,
    name: str,
    colour: str = "#1677ff",
    description: str = "",
    order: int | None = 0,
) -> Tag:
    """Raises DomainError for a bad name, colour or description, or a name taken in the group."""
    name, colour, description, order = _clean_tag(name, colour, description, order)
    if Tag.objects.filter(group=group, name=name).exists():
        raise DomainError("this group has a tag with this name already", field="name")
    return Tag.objects.create(
        group=group, name=name, colour=colour, description=description, order=order
    )


@transaction.atomic
def tag_update(*, tag: Tag, name: str, colour: str, description: str, order: int | None) -> Tag:
    """Raises DomainError like tag_create."""
    name, colour, description, order = _clean_tag(name, colour, description, order)
    if Tag.objects.filter(group_id=tag.group_id, name=name).exclude(pk=tag.pk).exists():
        raise DomainError("this group has a tag with this name already", field="name")
    tag.name, tag.colour, tag.description, tag.order = name, colour, description, order
    tag.save(update_fields=["name", "colour", "description", "order"])
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


def _clean_source(source: str) -> str:
    if source not in Source.values:
        raise DomainError(f"unknown tag source {source!r}")
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
    MAX_BULK ids, an id that is not a number, or an unknown source.
    """
    ids = _clean_ids(customer_ids)
    source = _clean_source(source)
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
        return len(missing)

    return _with_retries(work)


def tags_remove(*, customer_ids: Iterable[int], tag: Tag, source: str, user=None) -> int:
    """Take `tag` off the customers that have it; returns how many lost it.

    Raises DomainError like tags_assign.
    """
    ids = _clean_ids(customer_ids)
    source = _clean_source(source)
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
