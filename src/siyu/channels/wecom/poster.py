"""A printable poster for a channel code: the code's name, WeCom's own QR image (read from the
contact way's qr_code link, so the printed code is exactly the one WeCom scans), the staff
and their stores. SVG, so Chinese text prints sharp at any size with the printer's fonts."""

import base64
from xml.sax.saxutils import escape

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from siyu.channels.wecom.models import ChannelCode
from siyu.core.errors import DomainError

MAX_IMAGE = 2 * 1024 * 1024
IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def _qr_image(url: str) -> tuple[str, bytes]:
    try:
        response = httpx.get(url, timeout=settings.SIYU_WECOM_TIMEOUT, follow_redirects=True)
    except httpx.HTTPError as exc:
        message = _("WeCom's QR image could not be read: %s") % type(exc).__name__
        raise DomainError(message) from exc
    data = response.content
    kind = next((t for magic, t in IMAGE_TYPES.items() if data.startswith(magic)), None)
    if not response.is_success or kind is None or len(data) > MAX_IMAGE:
        raise DomainError(_("WeCom's QR image could not be read: HTTP %s") % response.status_code)
    return kind, data


def channel_code_poster(*, code: ChannelCode) -> bytes:
    """The poster as SVG bytes. Raises DomainError when the code has no QR link or WeCom's
    image cannot be read."""
    if not code.qr_code:
        raise DomainError(_("This code has no QR code yet."))
    kind, image = _qr_image(code.qr_code)
    staff = list(code.staff.select_related("store").order_by("pk"))
    names = "、".join(s.nickname or s.name for s in staff)
    stores = "、".join(dict.fromkeys(s.store.name for s in staff if s.store_id))
    href = f"data:{kind};base64,{base64.b64encode(image).decode()}"
    lines = [
        '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="860" viewBox="0 0 600 860">',
        '<rect width="600" height="860" fill="#fff"/>',
        '<g font-family="sans-serif" text-anchor="middle" fill="#222">',
        f'<text x="300" y="90" font-size="40" font-weight="bold">{escape(code.name)}</text>',
        f'<image x="100" y="140" width="400" height="400" href="{href}"/>',
        f'<text x="300" y="610" font-size="24">{escape(_("Scan to add us on WeCom"))}</text>',
        f'<text x="300" y="680" font-size="26">{escape(names)}</text>',
        f'<text x="300" y="725" font-size="22" fill="#666">{escape(stores)}</text>',
        "</g></svg>",
    ]
    return "\n".join(lines).encode()
