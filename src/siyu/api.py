"""REST API v1 (django-ninja) at /api/v1/, its OpenAPI docs at /api/v1/docs.

Every operation authenticates with an API key (`Authorization: Bearer <key>` or `X-API-Key`),
and every error answers JSON `{"detail": reason}` — validation errors add `errors`, a list of
`{"field", "reason"}` — so bad input gets a 4xx, never a 500.
"""

import json

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import APIKeyHeader, HttpBearer

from siyu.core.api_keys import api_key_authenticate
from siyu.core.errors import DomainError
from siyu.core.models import ApiKey

MAX_BODY_BYTES = 2 * 1024 * 1024


class StrictJSONParser(Parser):
    """JSON without NaN/Infinity: the databases' JSON types reject them."""

    def parse_body(self, request: HttpRequest):
        def reject(constant: str):
            raise ValueError(f"{constant} is not valid JSON")

        return json.loads(request.body, parse_constant=reject)


class _KeyCheck:
    """Shared by both ways of sending a key: the scope check and the body size limit.

    The size is checked here, before the body is read, so an oversized request costs nothing.
    """

    def __init__(self, scopes: tuple[str, ...]) -> None:
        super().__init__()
        self.scopes = scopes

    def check(self, request: HttpRequest, raw_key: str | None) -> ApiKey | None:
        if not raw_key:
            return None
        key = api_key_authenticate(raw_key)
        if key is None:
            raise AuthenticationError(message="invalid or revoked API key")
        if not set(self.scopes) & set(key.scopes):
            wanted = " or ".join(repr(s) for s in self.scopes)
            raise HttpError(403, f"this API key lacks the {wanted} scope")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError(400, "Content-Length is not a number") from None
        if length > MAX_BODY_BYTES:
            raise HttpError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        return key


class BearerKey(_KeyCheck, HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return self.check(request, token)


class HeaderKey(_KeyCheck, APIKeyHeader):
    param_name = "X-API-Key"

    def authenticate(self, request: HttpRequest, key: str | None) -> ApiKey | None:
        return self.check(request, key)


def scoped(*scopes: str) -> list:
    """The `auth=` of an operation that needs any one of `scopes` (ingest, read or admin)."""
    return [BearerKey(scopes), HeaderKey(scopes)]


api = NinjaAPI(
    title="Siyu API",
    version="1",
    urls_namespace="api",
    docs_url="/docs",
    parser=StrictJSONParser(),
    description="Authenticate with `Authorization: Bearer siyu_…` or `X-API-Key: siyu_…`.",
)


def _error(request, status: int, detail: str, errors: list | None = None):
    body = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return api.create_response(request, body, status=status)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc: AuthenticationError):
    detail = "missing API key" if exc.message == "Unauthorized" else exc.message
    return _error(request, 401, detail)


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    errors = [
        {"field": field_path(e.get("loc", ())), "reason": e.get("msg", "invalid")}
        for e in exc.errors
    ]
    return _error(request, 422, "the request is not valid", errors)


@api.exception_handler(DomainError)
def _refused(request, exc: DomainError):
    return _error(request, 422, exc.message, [{"field": exc.field, "reason": exc.message}])


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    return _error(request, 413, f"the body is larger than {MAX_BODY_BYTES} bytes")


def field_path(loc) -> str:
    """("body", "payload", "customer", "phone") → "customer.phone", ("query", "limit") →
    "limit"; list indexes as [i]."""
    parts = list(loc)
    if parts[:1] == ["body"]:
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    elif parts[:1] in (["query"], ["path"]):
        parts = parts[1:]
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


api.add_router("/events", "siyu.events.api.router")
api.add_router("/customers", "siyu.customers.api.router")
api.add_router("/customers", "siyu.tags.api.router")
api.add_router("/orders", "siyu.commerce.api.router")
api.add_router("/campaigns", "siyu.campaigns.api.router")
