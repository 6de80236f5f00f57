import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
application = get_wsgi_application()

from siyu.content.public_handler import with_public_links  # noqa: E402 (after setup)

# What a request's environ holds besides its headers (HTTP_*), which the server sets itself.
REQUEST_KEYS = ("SERVER_", "REMOTE_", "REQUEST_", "CONTENT_", "wsgi.")
REQUEST_NAMES = {"PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "GATEWAY_INTERFACE", "RAW_URI"}


def without_process_environment(app):
    """granian copies the server's whole environment into every request's environ (as CGI
    did): SIYU_SECRET_KEY, the database URL with its password, and any HTTP_PROXY, which Django
    would take for a header the client sent. Kept out of request.META; a header the client did
    send under such a name (another value) stays."""
    process = [
        (key, value)
        for key, value in os.environ.items()
        if not key.startswith(REQUEST_KEYS) and key not in REQUEST_NAMES
    ]

    def scrubbed(environ, start_response):
        for key, value in process:
            if environ.get(key) == value:
                del environ[key]
        return app(environ, start_response)

    return scrubbed


application = without_process_environment(with_public_links(application))
