"""The public side of tracked links: /m/<code>, opened by customers without a login.

The hot path is one SELECT (the link with its material, kept by the process for a few seconds)
and, for a new visit, one INSERT; the event, counters and notification follow in a task. The
page is rendered once per kept link and only the visit's token is put in per request. A visit
cookie (30 minutes, this link's path only) makes reloads the same visit; bots and prefetchers
get the page without being counted. The pages need no JavaScript: the only script is the
reading-time beacon. content.public_handler calls link_open straight from WSGI.
"""

import re
import secrets
from functools import wraps

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from siyu.content.models import Material, TrackedLink
from siyu.content.selectors import LINK_CACHE_SIZE, tracked_link_page
from siyu.content.services import material_view_open, material_view_read
from siyu.core.errors import DomainError

# Named per link as well as scoped to its path: one visit cookie never stands for another link.
VISIT_COOKIE = "siyu_v_%s"
VISIT_SECONDS = 30 * 60
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,32}")
# Crawlers, link unfurlers and scripted clients; a real browser always sends a User-Agent.
BOT_UA = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|embedly|curl|wget|python|"
    r"go-http|java/|okhttp|headless|lighthouse|monitor",
    re.IGNORECASE,
)


def _is_bot(request) -> bool:
    ua = request.META.get("HTTP_USER_AGENT", "")
    purpose = request.META.get("HTTP_SEC_PURPOSE", "") or request.META.get("HTTP_PURPOSE", "")
    return not ua or "prefetch" in purpose.lower() or bool(BOT_UA.search(ua))


def public(view):
    """For pages served without middleware (content.public_handler): rendered in the
    organisation's language whatever a console request left active in this worker, with the
    headers SecurityMiddleware and XFrameOptionsMiddleware would add."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with translation.override(settings.LANGUAGE_CODE):
            response = view(request, *args, **kwargs)
            if isinstance(response, TemplateResponse):
                response.render()
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    return wrapped


# Where the visit's token goes in a rendered page: random, so no material's text contains it.
_TOKEN_SLOT = secrets.token_hex(16)
# Per link code: the link the page was rendered from (while tracked_link_page returns that same
# instance the page is current), the page without the beacon, and the page's parts around
# each place of the token.
_pages: dict[str, tuple[TrackedLink, bytes, list[bytes]]] = {}


def _page(link: TrackedLink, code: str, token: str) -> bytes:
    """The page of `link` for a visit with `token` (the beacon's), or without the beacon for
    an uncounted visitor. A template render per kept link, not per request."""
    kept = _pages.get(code)
    if kept is None or kept[0] is not link:
        context = {"material": link.material, "code": code}
        plain = render_to_string("content/public/page.html", {**context, "token": ""})
        marked = render_to_string("content/public/page.html", {**context, "token": _TOKEN_SLOT})
        parts = marked.encode().split(_TOKEN_SLOT.encode())
        if len(_pages) >= LINK_CACHE_SIZE:
            _pages.clear()  # as the link cache: bounded, and rare
        kept = _pages[code] = (link, plain.encode(), parts)
    _, plain, parts = kept
    return token.encode().join(parts) if token else plain


def _gone(request, status: int) -> TemplateResponse:
    return TemplateResponse(request, "content/public/gone.html", {"status": status}, status=status)


@public
@require_safe
def link_open(request, code: str):
    """The material for a customer: a page (article, poster, file) or a redirect (product)."""
    link = tracked_link_page(code)
    if link is None:
        return _gone(request, 404)
    material = link.material
    if material.status != Material.Status.PUBLISHED:
        return _gone(request, 410)
    token = request.COOKIES.get(VISIT_COOKIE % code, "")
    fresh = False
    if not TOKEN.fullmatch(token):
        token = ""
        if request.method == "GET" and not _is_bot(request):
            token = material_view_open(link=link)
            fresh = True
    if material.kind == Material.Kind.PRODUCT:
        response = HttpResponseRedirect(material.url)
    else:
        response = HttpResponse(_page(link, code, token))
    # Per visit, never shared by a proxy; the cookie keeps reloads in the same visit.
    response["Cache-Control"] = "private, no-store"
    if fresh:
        response.set_cookie(
            VISIT_COOKIE % code,
            token,
            max_age=VISIT_SECONDS,
            path=f"/m/{code}",
            httponly=True,
            samesite="Lax",
        )
    return response


@public
@csrf_exempt  # a sendBeacon from the customer's browser; bound to the unguessable visit token
@require_POST
def link_beacon(request, code: str):
    """Reading time: the page's beacon posts `token` and `seconds`; 204, or 4xx with a reason."""
    token = request.POST.get("token", "")
    raw = request.POST.get("seconds", "")
    if not TOKEN.fullmatch(token):
        return HttpResponse("token: missing or malformed", status=400, content_type="text/plain")
    try:
        seconds = int(raw)
    except ValueError:
        return HttpResponse("seconds: not a whole number", status=400, content_type="text/plain")
    if seconds < 0:
        return HttpResponse("seconds: negative", status=400, content_type="text/plain")
    try:
        material_view_read(code=code, token=token, seconds=seconds)
    except DomainError as exc:
        return HttpResponse(f"token: {exc.message}", status=404, content_type="text/plain")
    return HttpResponse(status=204)


@public
@require_safe
def link_asset(request, code: str, part: str):
    """The image or file of a shared material: reachable only through a link to it."""
    link = tracked_link_page(code)
    if link is None or link.material.status != Material.Status.PUBLISHED:
        return _gone(request, 404)
    field = link.material.image if part == "image" else link.material.file
    if not field or not default_storage.exists(field.name):
        return _gone(request, 404)
    name = field.name.rsplit("/", 1)[-1]
    response = FileResponse(
        default_storage.open(field.name), as_attachment=part == "file", filename=name
    )
    response["Cache-Control"] = "public, max-age=86400"
    return response
