"""The console's left navigation: one entry per capability area that has pages.

An app that adds pages adds its area here. `namespace` marks the area as current for every
page under that URL namespace; `roles` says who sees it (the views enforce the same roles).
"""

from dataclasses import dataclass

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from siyu.console.access import ADMINS, ANY_ROLE, LEADS
from siyu.org.selectors import Viewer


@dataclass(frozen=True)
class NavArea:
    label: str | Promise
    url_name: str
    roles: frozenset[str]
    namespace: str = ""
    django_staff_only: bool = False  # Django admin needs the user's is_staff flag too
    # Current for every page under this path too (an area that shares its namespace)
    path_prefix: str = ""


AREAS: list[NavArea] = [
    NavArea(_("Home"), "console:home", ANY_ROLE),
    NavArea(_("Customers"), "customers:list", ANY_ROLE, namespace="customers"),
    NavArea(_("Hot leads"), "leads:list", ANY_ROLE, namespace="leads"),
    NavArea(_("Tags"), "tags:index", LEADS, namespace="tags"),
    NavArea(_("Segments"), "segments:list", ANY_ROLE, namespace="segments"),
    NavArea(_("Campaigns"), "campaigns:list", ANY_ROLE, namespace="campaigns"),
    NavArea(_("Layers"), "segments:rfm", LEADS, path_prefix="/segments/layers/"),
    NavArea(_("Content"), "content:scripts", ANY_ROLE, namespace="content"),
    NavArea(_("Imports"), "imports:list", LEADS, namespace="imports"),
    NavArea(_("Organisation"), "org:index", LEADS, namespace="org"),
    NavArea(_("Audit log"), "core:audit", ADMINS, namespace="core"),
    NavArea(_("Event types"), "events:types", ADMINS, namespace="events"),
    NavArea(_("API keys"), "apikeys:list", ADMINS, namespace="apikeys"),
    NavArea(_("Webhooks"), "webhooks:list", ADMINS, namespace="webhooks"),
    NavArea(_("WeCom"), "wecom:settings", ADMINS, namespace="wecom"),
    NavArea(_("Django admin"), "admin:index", ADMINS, django_staff_only=True),
]


@dataclass(frozen=True)
class NavLink:
    label: str | Promise
    url: str
    current: bool


def nav_for(request, viewer: Viewer) -> list[NavLink]:
    """The areas this viewer may open, with the one being viewed marked current."""
    match = getattr(request, "resolver_match", None)
    view_name = match.view_name if match else ""
    namespace = match.namespace if match else ""
    is_django_staff = bool(getattr(request.user, "is_staff", False))
    # A page under an area's path prefix belongs to that area, not to its namespace's area.
    claimed = any(a.path_prefix and request.path.startswith(a.path_prefix) for a in AREAS)
    links = []
    for area in AREAS:
        if viewer.role not in area.roles or (area.django_staff_only and not is_django_staff):
            continue
        current = (
            view_name == area.url_name
            or bool(area.namespace and area.namespace == namespace and not claimed)
            or bool(area.path_prefix and request.path.startswith(area.path_prefix))
        )
        links.append(NavLink(area.label, reverse(area.url_name), current))
    return links
