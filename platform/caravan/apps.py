from django.apps import AppConfig


class CaravanConfig(AppConfig):
    name = "caravan"
    verbose_name = "Caravan"

    def ready(self):
        from . import celery  # noqa: F401  the Celery app is the current app before any task is queued
        from .tenancy import tasks  # noqa: F401  registers caravan.fan_out
        from . import tasks as _tasks  # noqa: F401  registers the leases' watchdog
        from . import metrics  # noqa: F401  Celery signal handlers: task metrics, log context
