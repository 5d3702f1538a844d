"""Caravan's project package: settings, URL maps, the Celery app and the tenancy plumbing.

It lives in ``platform/caravan`` because ``platform`` is a standard-library module: the
``platform/`` folder is a source root (never a package), put on ``sys.path`` by ``manage.py``,
the test runner and the ``.pth`` file that ``make venv`` writes. See README, "The platform folder".
"""
from .celery import app as celery_app

__all__ = ["celery_app"]
