"""A WSGI handler for the public link pages (/m/…) without the console's middleware.

Customers' phones need no session, CSRF token, login, messages or language negotiation, and
that stack cost about as much CPU as the whole page (benchmarks/radar.py); siyu.wsgi sends
/m/ paths here and everything else to Django's usual handler. The views set the security
headers themselves (public_views.secure).
"""

from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler


class PublicLinksHandler(WSGIHandler):
    def load_middleware(self, is_async=False):
        # Django's BaseHandler.load_middleware with an empty MIDDLEWARE list.
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response)


def with_public_links(application):
    """`application` for every path but /m/…, which the lean handler serves."""
    public = PublicLinksHandler()

    def dispatch(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/m/"):
            return public(environ, start_response)
        return application(environ, start_response)

    return dispatch
