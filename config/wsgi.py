"""WSGI entry point (``granian config.wsgi:application``): Django, tiles in front."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_wsgi_application()

# Imported once Django is set up: it reads the settings and the models.
from tilesvc.front import TileFront  # noqa: E402

application = TileFront(django_application)
