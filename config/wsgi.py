import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Import every view now, not in the first request (see `preload_app` in config/gunicorn.py).
import_module(settings.ROOT_URLCONF)
# Nothing above queries; closing anyway keeps a forked worker from sharing a connection.
connections.close_all()
