"""Caravan's project package: settings, URL maps, the Celery app and the tenancy plumbing.

It lives in ``platform/caravan`` because ``platform`` is a standard-library module: the
``platform/`` folder is a source root (never a package), put on ``sys.path`` by ``manage.py``,
the test runner and the ``.pth`` file that ``make venv`` writes. See README, "The platform folder".

The Celery app is loaded by ``CaravanConfig.ready()`` (every Django process) and by ``celery -A caravan``
through ``__getattr__`` below, not on import: plain modules of this package (``caravan.money``, which the
policy engine uses) import without Django or Celery.
"""


def __getattr__(name):
    if name in ("celery_app", "app"):
        from .celery import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
