import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
application = get_wsgi_application()

from siyu.content.public_handler import with_public_links  # noqa: E402 (after setup)

# What a request's environ may hold besides the server's environment.
REQUEST_KEYS = ("HTTP_", "SERVER_", "REMOTE_", "REQUEST_", "CONTENT_", "wsgi.")
REQUEST_NAMES = {"PATH_INFO", "QUERY_STRING", "SCRIPT_NAME", "GATEWAY_INTERFACE", "RAW_URI"}


def without_process_environment(app):
    """granian copies the server's whole environment into every request's environ (as CGI
    did): SIYU_SECRET_KEY, the database URL with its password. Kept out of request.META, where
    a debug page or a logged request would show them."""
    private = [k for k in os.environ if not k.startswith(REQUEST_KEYS) and k not in REQUEST_NAMES]

    def scrubbed(environ, start_response):
        for key in private:
            environ.pop(key, None)
        return app(environ, start_response)

    return scrubbed


application = without_process_environment(with_public_links(application))
