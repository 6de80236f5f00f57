"""The restricted formatter for script text.

Only the placeholders listed in VARIABLES are replaced, by plain string substitution: no
str.format, no attribute lookup, no template engine ever sees the user's text, so `{0}`,
`{customer.__class__}` or `{{ }}` stay exactly as typed.
"""

import re

from django.utils.translation import gettext as _

# Scripts are sent to Chinese-speaking customers whatever the console language is.
NAME_FALLBACK = "您"

VARIABLES = (
    "customer.name",
    "customer.city",
    "staff.name",
    "staff.nickname",
    "store.name",
    "material.title",
    "material.link",
)
# Anything shaped like a variable; used to name unknown ones when a script is saved.
_CANDIDATE = re.compile(r"\{([A-Za-z0-9_.]+)\}")
_KNOWN = re.compile(r"\{(" + "|".join(re.escape(v) for v in VARIABLES) + r")\}")


def braced(names) -> str:
    return " ".join("{" + name + "}" for name in names)


def unknown_variables(body: str) -> list[str]:
    """The variable-like placeholders in `body` that the formatter does not know, in order."""
    seen: list[str] = []
    for name in _CANDIDATE.findall(body or ""):
        if name not in VARIABLES and name not in seen:
            seen.append(name)
    return seen


def render_script(
    body: str, *, customer, staff=None, material=None, material_link: str = ""
) -> str:
    """The script text for one customer. Empty values fall back: no name → 您 (polite "you"),
    no nickname → the staff member's name; other blanks become empty text."""
    store = getattr(customer, "store", None) or getattr(staff, "store", None)
    staff_name = getattr(staff, "name", "") or ""
    values = {
        "customer.name": (getattr(customer, "name", "") or "").strip() or NAME_FALLBACK,
        "customer.city": getattr(customer, "city", "") or "",
        "staff.name": staff_name,
        "staff.nickname": getattr(staff, "nickname", "") or staff_name,
        "store.name": getattr(store, "name", "") or "",
        "material.title": getattr(material, "title", "") or "",
        "material.link": material_link or getattr(material, "url", "") or "",
    }
    return _KNOWN.sub(lambda match: values[match.group(1)], body or "")


def format_duration(seconds: int) -> str:
    """Reading time for people: "2 min 10 s" (zh: 2分10秒)."""
    minutes, rest = divmod(max(int(seconds or 0), 0), 60)
    if minutes:
        return _("%(m)s min %(s)s s") % {"m": minutes, "s": rest}
    return _("%(s)s s") % {"s": rest}
