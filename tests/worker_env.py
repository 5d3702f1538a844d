"""Each pytest-xdist worker's own Redis database, media and mail folders.

``make test`` runs the whole suite in two processes (pytest-xdist, ``-n 2 --dist loadfile``: a file's tests stay
in one process, with their module fixtures and servers). pytest-django already gives each worker a test database
of its own (``test_<name>_gw0``, ``_gw1``); this plugin does the same for what the settings read from the
environment, so the Celery queues, cache entries, uploaded files and mails one worker's tests read are never the
other's. It must run before Django's settings are imported, hence a plugin named with ``-p`` (pyproject's
``addopts``) rather than conftest code: pytest-django sets Django up before the first conftest is loaded. The app
servers and workers the tests start inherit the environment, so they use the same ones. The first worker (and a
run without xdist) keeps the environment as it is.
"""
import os
from urllib.parse import urlsplit, urlunsplit


def worker_number(environ=os.environ) -> int:
    """0 without xdist or in its first worker, N in worker ``gwN``."""
    worker = environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def redis_url_for(url: str, number: int) -> str:
    """The same server, database ``(db + number) % 16`` (Redis has 16 databases unless configured otherwise)."""
    parts = urlsplit(url)
    path = parts.path.strip("/")
    db = int(path) if path.isdigit() else 0
    return urlunsplit(parts._replace(path=f"/{(db + number) % 16}"))


def isolate(environ) -> None:
    number = worker_number(environ)
    if not number:
        return
    if environ.get("REDIS_URL"):
        environ["REDIS_URL"] = redis_url_for(environ["REDIS_URL"], number)
    for name in ("MEDIA_ROOT", "EMAIL_FILE_PATH"):
        if environ.get(name):
            environ[name] = f"{environ[name].rstrip('/')}-gw{number}"


isolate(os.environ)
