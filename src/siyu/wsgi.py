import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "siyu.settings")
application = get_wsgi_application()

from siyu.content.public_handler import with_public_links  # noqa: E402 (after setup)

application = with_public_links(application)
