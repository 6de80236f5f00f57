"""Set-based loading of a tags file, one chunk at a time, through the tag services; also the
tags and membership levels of a customer file, once its rows have their customers.

A chunk costs a fixed number of statements plus a few per distinct tag it names: one identity
lookup per identifier kind, one read of the groups and tags named, bulk creation of the
missing ones, one read of the assignments the customers already have, then `tags_assign` per
tag over all its customers. Only existing customers are tagged: a tags file never creates
or merges people. The ids of the assignments a chunk made are recorded as ImportedRanges so
a rollback takes off those and nothing else.
"""

from collections import defaultdict
from collections.abc import Sequence

from django.conf import settings
from django.db.models import Q
from django.utils import translation
from django.utils.translation import pgettext

from siyu.core.bulk import select_in
from siyu.customers.models import Identity
from siyu.imports.loader import Counts
from siyu.imports.rows import CustomerRow, TagName
from siyu.imports.tag_rows import TagRow
from siyu.tags.models import CustomerTag, Source, Tag, TagGroup
from siyu.tags.services import MAX_BULK, tags_assign, tags_remove

LABEL = CustomerTag._meta.label_lower
Pair = tuple[int, int]  # (customer id, tag id)
Row = TagRow | CustomerRow  # a tags file's row, or a customer file's with tags


def imported_group_name() -> str:
    """The group of bare tags, named in the site's language so every run finds the same one."""
    with translation.override(settings.LANGUAGE_CODE):
        return pgettext("tag group", "Imported")


def load_tags(rows: Sequence[TagRow], *, tags_column: str, user=None) -> Counts:
    """Tag the customers the chunk's rows name. Rows that cannot be loaded get their errors.

    Counts: matched = rows that put at least one new tag on their customer, skipped = rows
    whose customer had all their tags already; invalid is left to the caller.
    """
    valid = [r for r in rows if not r.errors]
    row_customer = _resolve(valid)
    wanted = [(r, row_customer[r.row], r.tags) for r in valid if row_customer[r.row] is not None]
    return _assign(wanted, column=tags_column, user=user)


def load_customer_tags(
    rows: Sequence[CustomerRow],
    row_customer: Sequence[int | None],
    *,
    tags_column: str,
    level_column: str,
    user=None,
) -> Counts:
    """Put a customer file's tags and membership levels on the customers its rows loaded.

    A level is a tag of the level group, which allows one per customer. A row whose tags
    cannot go on (a rule tag, two tags of an exclusive group) gets the error; its customer
    stays imported.
    """
    wanted = []
    level_group = None
    for row, customer_id in zip(rows, row_customer, strict=True):
        if customer_id is None or not (row.tags or row.level):
            continue
        tags = list(row.tags or ())
        if row.level:
            level_group = level_group or _level_group()
            tags.append((level_group, row.level))
        wanted.append((row, customer_id, tags))
    return _assign(wanted, column=tags_column or level_column, user=user)


def _level_group() -> str:
    with translation.override(settings.LANGUAGE_CODE):
        name = pgettext("tag group", "Member level")
    TagGroup.objects.get_or_create(
        name=name, defaults={"dimension": TagGroup.Dimension.COMMERCIAL, "exclusive": True}
    )
    return name


def _assign(wanted_rows: list[tuple[Row, int, list[TagName]]], *, column: str, user) -> Counts:
    """Put each row's tags on its customer: (row, customer id, tags) of rows without errors."""
    counts = Counts()
    default_group = imported_group_name()
    groups = {
        g.name: g
        for g in TagGroup.objects.filter(
            name__in={group or default_group for _, _, tags in wanted_rows for group, _ in tags}
        )
    }
    wanted: list[tuple[Row, int, list[tuple[str, str]]]] = []
    for row, customer_id, tags in wanted_rows:
        names = [(group or default_group, name) for group, name in tags]
        if _conflict(row, names, groups, column):
            continue
        wanted.append((row, customer_id, names))
    if not wanted:
        return counts
    tag_ids, rule_tags = _tags({name for _, _, names in wanted for name in names}, groups)
    wanted = [w for w in wanted if not _rule_tag(w[0], w[2], tag_ids, rule_tags, column)]
    if not wanted:
        return counts
    exclusive = {g.pk for g in groups.values() if g.exclusive}
    row_pairs = _last_wins(
        [(customer, [tag_ids[n] for n in names]) for _, customer, names in wanted],
        {tag_ids[n]: groups[n[0]].pk for _, _, names in wanted for n in names},
        exclusive,
    )
    customers = sorted({customer for _, customer, _ in wanted})
    had = _existing(customers, sorted(set(tag_ids.values())))
    new: set[Pair] = set()
    for pairs in row_pairs:
        fresh = [p for p in pairs if p not in had and p not in new]
        new.update(fresh)
        if fresh:
            counts.matched += 1
        else:
            counts.skipped += 1
    by_tag: dict[int, list[int]] = defaultdict(list)
    for customer, tag in sorted(new):
        by_tag[tag].append(customer)
    tags = Tag.objects.in_bulk(list(by_tag))
    for tag_id, customer_ids in by_tag.items():
        tags_assign(customer_ids=customer_ids, tag=tags[tag_id], source=Source.IMPORT, user=user)
    counts.ranges = _ranges(_added_ids(new))
    return counts


def _resolve(rows: Sequence[TagRow]) -> dict[int, int | None]:
    """Row number → the one existing customer its identifiers point to (None: an error)."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for kind, value in row.identifiers:
            by_kind[kind].add(value)
    found: dict[tuple[str, str], int] = {}
    for kind, values in by_kind.items():
        for value, customer_id in select_in(
            Identity,
            ["value", "customer_id"],
            "value",
            sorted(values),
            where={"kind": kind, "namespace": ""},
        ):
            found[(kind, value)] = customer_id
    result: dict[int, int | None] = {}
    for row in rows:
        customers = {found[key] for key in row.identifiers if key in found}
        column = "、".join(name for name, _ in row.named_by)
        value = " / ".join(value for _, value in row.named_by)
        result[row.row] = None
        if not customers:
            row.add_error(column, "no customer with this identifier", value)
        elif len(customers) > 1:
            row.add_error(
                column,
                "these identifiers belong to different customers; import the row as a "
                "customer to merge them first",
                value,
            )
        else:
            result[row.row] = customers.pop()
    return result


def _conflict(
    row: Row, names: list[tuple[str, str]], groups: dict[str, TagGroup], column: str
) -> bool:
    """A row naming two tags of a group that allows one per customer is an error."""
    per_group: dict[str, list[str]] = defaultdict(list)
    for group, name in names:
        if group in groups and groups[group].exclusive:
            per_group[group].append(name)
    for group, tags in per_group.items():
        if len(tags) > 1:
            row.add_error(
                column,
                f"the group {group} allows one tag per customer; this row names " + ", ".join(tags),
                "、".join(tags),
            )
            return True
    return False


def _rule_tag(
    row: Row, names: list[tuple[str, str]], ids: dict, rule_tags: set[int], column: str
) -> bool:
    """A rule tag's members are computed from its rule: a file cannot add to them."""
    ruled = [name for name in names if ids[name] in rule_tags]
    for group, name in ruled:
        row.add_error(column, f"{group}:{name} is a rule tag; its members are computed", name)
    return bool(ruled)


def _tags(
    names: set[tuple[str, str]], groups: dict[str, TagGroup]
) -> tuple[dict[tuple[str, str], int], set[int]]:
    """Ids of the named tags, creating the groups and tags that do not exist yet, and which
    of them are rule tags.

    New groups (the imported group included) are ordinary, non-exclusive basic groups; the
    `groups` dict gains them.
    """
    missing = {group for group, _ in names} - groups.keys()
    if missing:
        TagGroup.objects.bulk_create(
            [TagGroup(name=g, dimension=TagGroup.Dimension.BASIC) for g in sorted(missing)],
            ignore_conflicts=True,
        )
        groups.update((g.name, g) for g in TagGroup.objects.filter(name__in=missing))
    wanted = {(groups[group].pk, name) for group, name in names}

    def known() -> dict[tuple[int, str], tuple[int, bool]]:
        found = Tag.objects.filter(
            group_id__in={g for g, _ in wanted}, name__in={n for _, n in wanted}
        ).values_list("group_id", "name", "pk", "rule")
        return {(g, n): (pk, rule is not None) for g, n, pk, rule in found}

    ids = known()
    if wanted - ids.keys():
        Tag.objects.bulk_create(
            [Tag(group_id=g, name=n) for g, n in sorted(wanted - ids.keys())],
            ignore_conflicts=True,
        )
        ids = known()
    found = {(group, name): ids[(groups[group].pk, name)] for group, name in names}
    return {n: pk for n, (pk, _) in found.items()}, {pk for pk, rule in found.values() if rule}


def _last_wins(
    rows: list[tuple[int, list[int]]], tag_group: dict[int, int], exclusive: set[int]
) -> list[list[Pair]]:
    """Each row's (customer, tag) pairs; where two rows give one customer different tags of
    an exclusive group, the later row's tag wins, as if the file were applied in order."""
    last: dict[tuple[int, int], int] = {}  # (customer, exclusive group) → tag
    for customer, tags in rows:
        for tag in tags:
            if tag_group[tag] in exclusive:
                last[(customer, tag_group[tag])] = tag
    return [
        [
            (customer, tag)
            for tag in tags
            if tag_group[tag] not in exclusive or last[(customer, tag_group[tag])] == tag
        ]
        for customer, tags in rows
    ]


def _existing(customers: list[int], tag_ids: list[int]) -> set[Pair]:
    wanted = set(tag_ids)
    return {
        (customer, tag)
        for customer, tag in select_in(
            CustomerTag, ["customer_id", "tag_id"], "customer_id", customers
        )
        if tag in wanted
    }


def _added_ids(new: set[Pair]) -> list[int]:
    """The ids of the assignments just made for `new`."""
    found = select_in(
        CustomerTag,
        ["id", "customer_id", "tag_id"],
        "customer_id",
        sorted({c for c, _ in new}),
        where={"source": Source.IMPORT},
    )
    return sorted(pk for pk, customer, tag in found if (customer, tag) in new)


def _ranges(ids: list[int]) -> list[tuple[str, int, int]]:
    """Sorted ids as runs of consecutive ids: a bulk insert's ids are mostly one run."""
    runs: list[tuple[str, int, int]] = []
    for pk in ids:
        if runs and runs[-1][2] == pk - 1:
            runs[-1] = (LABEL, runs[-1][1], pk)
        else:
            runs.append((LABEL, pk, pk))
    return runs


def remove_assignments(ranges: Q, *, user=None) -> int:
    """Take off the assignments a tags job made (those in `ranges`) and still stand.

    Each removal is written to the tag history; the history of the additions stays.
    """
    by_tag: dict[int, list[int]] = defaultdict(list)
    for tag_id, customer_id in CustomerTag.objects.filter(ranges).values_list(
        "tag_id", "customer_id"
    ):
        by_tag[tag_id].append(customer_id)
    tags = Tag.objects.in_bulk(list(by_tag))
    removed = 0
    for tag_id, customer_ids in by_tag.items():
        for start in range(0, len(customer_ids), MAX_BULK):
            removed += tags_remove(
                customer_ids=customer_ids[start : start + MAX_BULK],
                tag=tags[tag_id],
                source=Source.IMPORT,
                user=user,
            )
    return removed
