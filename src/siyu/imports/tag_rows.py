"""Rows of a tags file: who the row names (any identifier a customer file may carry) and
which tags it puts on them.

A tags cell holds one or more tags, separated by , ， ; ； | ｜ 、 or line breaks (spaces
around them are ignored). A tag is written "group:tag" (or with a full-width ：) to name its
group, or bare, and then goes to the "imported" group. The identifier columns are parsed by
the customer row parser, so a tags file recognises people exactly as a customer file does.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from siyu.core.errors import DomainError
from siyu.imports.presets import CUSTOMER, IDENTITY_FIELDS, Mapping
from siyu.imports.rows import RowError, TagName, parse_customer, parse_tag, split_tags

KIND_TARGET = {kind: target for target, kind in IDENTITY_FIELDS.items()}


@dataclass(slots=True)
class TagRow:
    row: int
    values: Sequence[Any]
    errors: list[RowError] = field(default_factory=list)
    identifiers: list[tuple[str, str]] = field(default_factory=list)
    phone_display: str | None = None
    tags: list[TagName] = field(default_factory=list)
    # The identifier columns this row filled, as (header, value): for "nobody has this" errors.
    named_by: list[tuple[str, str]] = field(default_factory=list)

    def add_error(self, column: str, reason: str, value: Any) -> None:
        self.errors.append(RowError(self.row, column, reason, "" if value is None else str(value)))


def parser(mapping: Mapping, fixed: str = "") -> Callable[[int, Sequence[Any], Mapping], TagRow]:
    """A row parser for a tags file read with `mapping`; `fixed` ("group:tag") goes on every
    row besides the row's own tags."""
    identity = Mapping(
        kind=CUSTOMER,
        columns={t: i for t, i in mapping.columns.items() if t in IDENTITY_FIELDS},
        names={t: n for t, n in mapping.names.items() if t in IDENTITY_FIELDS},
    )
    fixed_tag = [parse_tag(fixed)] if fixed else []
    tags_at = mapping.columns.get("tags")
    tags_column = mapping.names.get("tags", "")

    def parse(number: int, values: Sequence[Any], _mapping: Mapping) -> TagRow:
        person = parse_customer(number, values, identity)
        row = TagRow(
            number,
            values,
            errors=person.errors,
            identifiers=person.identifiers,
            phone_display=person.phone_display,
            named_by=[
                (name, _cell(values[i]))
                for _t, i, name in identity.plan
                if i < len(values) and _cell(values[i])
            ],
        )
        if person.masked and not person.identifiers and not person.errors:
            kind, value = person.masked[0]
            column = identity.names.get(KIND_TARGET[kind], "")
            row.add_error(column, "a masked number or id cannot identify a customer", value)
        raw = values[tags_at] if tags_at is not None and tags_at < len(values) else None
        text = _cell(raw)
        try:
            own = split_tags(text)
        except DomainError as exc:
            row.add_error(tags_column, exc.message, text)
            return row
        row.tags = list(dict.fromkeys([*own, *fixed_tag]))
        if not row.tags:
            row.add_error(tags_column, "no tag in this row", text)
        return row

    return parse


def _cell(value: Any) -> str:
    if type(value) is float and value.is_integer():  # XLSX numbers: 13800000001.0
        return str(int(value))
    return "" if value is None else str(value).strip()
