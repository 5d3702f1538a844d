"""The WSGI application gunicorn serves (``infra/entrypoint.py``: ``gunicorn caravan.wsgi --preload``).

Both URL maps (agency hosts and the platform domain) are loaded here, not by the first request: that
request took seconds (every view module and what it imports) while a client waited. gunicorn loads
this module once in its master (``--preload``) and forks the workers from it, so they share those
pages until they write to them; nothing here may leave a database or Redis connection open, since a
forked worker would share its socket with its siblings.
"""
import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
application = get_wsgi_application()


def _load_url_maps() -> None:
    from django.conf import settings
    from django.db import connections
    from django.urls import get_resolver

    open_before = {alias for alias in connections if connections[alias].connection is not None}
    for urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):
        get_resolver(urlconf).url_patterns  # noqa: B018 (imports every view module)
    # Close what the loading opened, not a connection the importer holds (a test importing the app
    # in-process is inside its transaction).
    for alias in connections:
        if alias not in open_before:
            connections[alias].close()
    # What is loaded stays out of the garbage collector's passes: a collection in a worker would
    # otherwise write to (and so copy) every page holding one of these objects.
    gc.freeze()


_load_url_maps()
