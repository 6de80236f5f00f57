"""What the console's segment builder offers: every condition, op and value input, labelled.

Built from `dsl.vocabulary()`, the same tables the validator reads, so the form offers what
the language accepts; values that name rows (staff, stores, channels, tags, event types)
become choices, those personal to the viewer (staff, stores) cut to the viewer's scope.
The builder's script turns this into inputs; the server validates whatever comes back.
"""

from typing import Any

from django.utils.translation import gettext as _

from siyu.customers.selectors import channel_list
from siyu.events.models import EventType
from siyu.org.selectors import Viewer, staff_visible_to, stores_visible_to
from siyu.segments import dsl
from siyu.tags.selectors import tag_catalogue

SMALL_RANGE = 12  # integers with at most this many values get a select (scores, months)


def _staff_label(staff) -> str:
    if staff.nickname and staff.nickname != staff.name:
        return f"{staff.name}（{staff.nickname}）"
    return staff.name


def _references(viewer: Viewer) -> dict[str, list]:
    """Choices for values that name a row, by the `of` a value kind declares."""
    return {
        "staff": [[s.pk, _staff_label(s)] for s in staff_visible_to(viewer).order_by("name")],
        "store": [[s.pk, s.name] for s in stores_visible_to(viewer).order_by("name")],
        "channel": [[c.code, c.name] for c in channel_list()],
    }


def _input(kind: dict[str, Any], references: dict[str, list]) -> dict[str, Any]:
    """How to ask for one value of `kind` (a dsl Kind.describe()): input, type, choices."""
    name, of = kind["kind"], kind.get("of", "")
    if name == "choice":
        choices = [[c["value"], c["label"]] for c in kind["choices"] if c["value"] != ""]
        return {"input": "select", "type": "str", "choices": choices}
    if name == "boolean":
        return {"input": "select", "type": "bool", "choices": [[True, _("yes")], [False, _("no")]]}
    if of in references:
        value_type = "str" if name == "text" else "int"
        return {"input": "select", "type": value_type, "choices": references[of]}
    if name == "integer":
        low, high = kind["min"], kind["max"]
        if high - low < SMALL_RANGE:
            return {
                "input": "select",
                "type": "int",
                "choices": [[n, str(n)] for n in range(low, high + 1)],
            }
        return {"input": "number", "type": "int", "min": low, "max": high, "step": 1}
    if name in ("number", "id"):
        step, value_type = (1, "int") if name == "id" else ("any", "number")
        limits = {"min": kind.get("min", 1), "max": kind.get("max"), "step": step}
        return {"input": "number", "type": value_type, **limits}
    if name == "date":
        return {"input": "date", "type": "str"}
    return {"input": "text", "type": "str", "max": kind.get("max_length", dsl.MAX_TEXT)}


def _attributes(vocab: dict[str, Any], references: dict[str, list]) -> list[dict[str, Any]]:
    arity = {"list": "many", "pair": "pair"}
    result = []
    for attribute in vocab["attributes"]:
        value = _input(attribute["value"], references)
        ops = []
        for name in attribute["ops"]:
            op = vocab["ops"][name]
            if name == "is_set":
                ops.append({"op": name, "label": op["label"], "arity": "flag"})
                continue
            kind = _input(op["value"], references) if "value" in op else value
            entry = {"op": name, "label": op["label"], "arity": arity.get(op["shape"], "one")}
            ops.append(entry | {k: v for k, v in kind.items() if k != "choices"})
        result.append(
            {
                "name": attribute["name"],
                "label": attribute["label"],
                "ops": ops,
                "choices": value.get("choices", []),
            }
        )
    return result


def builder_vocabulary(viewer: Viewer) -> dict[str, Any]:
    """Everything the builder form offers, JSON-ready; a few small queries, none per row."""
    vocab = dsl.vocabulary()
    leaves = vocab["leaves"]
    return {
        "kinds": [
            {"kind": "attr", "label": _("Attribute")},
            {"kind": "tags", "label": leaves["tags"]["label"]},
            {"kind": "orders", "label": leaves["orders"]["label"]},
            {"kind": "events", "label": leaves["events"]["label"]},
            {"kind": "relationship", "label": leaves["relationship"]["label"]},
            {"kind": "json", "label": _("Other (JSON)")},
        ],
        "attributes": _attributes(vocab, _references(viewer)),
        "tag_modes": [[m["value"], m["label"]] for m in leaves["tags"]["modes"]],
        "tag_groups": [
            {"label": entry.group.name, "tags": [[tag.pk, tag.name] for tag in entry.tags]}
            for entry in tag_catalogue()
            if entry.tags
        ],
        "order_measures": [
            ["any", _("at least one order")],
            ["none", _("no order")],
            ["count", _("number of orders")],
            ["amount", _("amount paid (CNY, net of refunds)")],
        ],
        "event_types": [[t.name, t.label or t.name] for t in EventType.objects.order_by("name")],
        "event_measures": [
            ["at_least", _("at least N times")],
            ["none", _("never")],
        ],
        "relationships": [
            [c["value"], c["label"]] for c in leaves["relationship"]["value"]["choices"]
        ],
        "groups": [
            ["all", _("all of")],
            ["any", _("any of")],
            ["none", _("none of")],
        ],
    }
