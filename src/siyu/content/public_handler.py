"""A WSGI handler for the public link pages (/m/…) without the console's middleware.

Customers' phones need no session, CSRF token, login, messages or language negotiation, and
that stack cost about as much CPU as the whole page (benchmarks/radar.py); siyu.wsgi sends
/m/ paths here and everything else to Django's usual handler. The views set the security
headers themselves (public_views.public).

The page a shared link opens (GET /m/<code>) goes further: its view is called straight away,
without resolving the URL against the whole URLconf (a tenth of the page's CPU).
"""

import re

from django.core import signals
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.utils.log import log_response

from siyu.content import public_views
from siyu.content.public_urls import CODE

PAGE = re.compile(rf"/m/{CODE}")


class PublicLinksHandler(WSGIHandler):
    def load_middleware(self, is_async=False):
        # Django's BaseHandler.load_middleware with an empty MIDDLEWARE list.
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)

    def __call__(self, environ, start_response):
        page = PAGE.fullmatch(environ.get("PATH_INFO", ""))
        if page is None or environ.get("REQUEST_METHOD") != "GET":
            return super().__call__(environ, start_response)  # beacon, image, file, HEAD
        # Django's WSGIHandler.__call__ and get_response, with the view known from the path.
        signals.request_started.send(sender=self.__class__, environ=environ)
        request = WSGIRequest(environ)
        try:
            response = public_views.link_open(request, page["code"])
        except Exception as exc:  # logged, and Django's 500 page
            response = response_for_exception(request, exc)
        if response.status_code >= 400:
            log_response(
                "%s: %s", response.reason_phrase, request.path, response=response, request=request
            )
        # A length lets the server send the body as it is instead of in chunks.
        response.headers.setdefault("Content-Length", str(len(response.content)))
        cookies = [("Set-Cookie", c.output(header="")) for c in response.cookies.values()]
        start_response(
            f"{response.status_code} {response.reason_phrase}", [*response.items(), *cookies]
        )
        return response  # the server's close() sends request_finished (connections, caches)


def with_public_links(application):
    """`application` for every path but /m/…, which the lean handler serves."""
    public = PublicLinksHandler()

    def dispatch(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/m/"):
            return public(environ, start_response)
        return application(environ, start_response)

    return dispatch
