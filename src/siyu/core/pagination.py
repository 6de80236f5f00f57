"""Keyset pagination: a page costs the same at row one and at row one million."""

from dataclasses import dataclass

from django.db.models import QuerySet


@dataclass(frozen=True)
class KeysetPage:
    items: list
    next_cursor: int | None
    prev_cursor: int | None
    has_prev: bool


def keyset_page(qs: QuerySet, *, after: int | None, before: int | None, size: int) -> KeysetPage:
    """Newest-first page of `qs` by primary key, after or before the given id."""
    if before is not None:
        rows = list(qs.filter(pk__gt=before).order_by("pk")[: size + 1])
        has_more_newer = len(rows) > size
        rows = list(reversed(rows[:size]))
        return KeysetPage(
            items=rows,
            next_cursor=rows[-1].pk if rows else None,
            prev_cursor=rows[0].pk if rows and has_more_newer else None,
            has_prev=has_more_newer,
        )
    if after is not None:
        qs = qs.filter(pk__lt=after)
    rows = list(qs.order_by("-pk")[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        items=rows,
        next_cursor=rows[-1].pk if rows and has_more else None,
        prev_cursor=rows[0].pk if rows and after is not None else None,
        has_prev=after is not None,
    )
