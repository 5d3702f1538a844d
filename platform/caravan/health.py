"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database, cache, broker, migrations).

Both are answered by ``caravan.metrics.ObservabilityMiddleware`` before the host is looked up, so a
load balancer probing by IP address or any host name gets an answer (django-tenants would answer an
unknown host with "no agency here"). The checks are django-health-check's (``Database``, ``Cache``,
``Redis`` for the broker, each with its time budget and sanitised error messages) plus
:class:`MigrationsApplied`; its own view is not used because it answers 500 and picks HTML for a
probe's ``Accept: */*``, where a probe wants 503 and JSON.
"""
import dataclasses
import datetime
import threading
import time
from typing import ClassVar

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpResponseNotAllowed, JsonResponse
from django.utils.cache import add_never_cache_headers
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.contrib.redis import Redis
from health_check.exceptions import ServiceUnavailable
from redis.asyncio import Redis as AsyncRedis

# The migrations check reads the migration graph and two django_migrations tables; a process
# repeats it at most this often (probes come every few seconds from every load balancer).
MIGRATIONS_CHECK_SECONDS = 30


@dataclasses.dataclass
class MigrationsApplied(HealthCheck):
    """Every migration on disk is applied in ``public`` and in the template schema new agencies are
    made from. (Agency schemas are migrated by ``migrate_platform`` after these two; checking each
    of thousands on every probe would not be cheap.) The answer is kept per process for
    :data:`MIGRATIONS_CHECK_SECONDS`."""

    timeout: datetime.timedelta = dataclasses.field(default=datetime.timedelta(seconds=10), repr=False)

    _lock: ClassVar[threading.Lock] = threading.Lock()
    _cached: ClassVar[tuple[float, str] | None] = None  # (monotonic time, "" or the error)

    def run(self):
        with self._lock:
            cached = MigrationsApplied._cached
            if cached is None or time.monotonic() - cached[0] > MIGRATIONS_CHECK_SECONDS:
                cached = MigrationsApplied._cached = (time.monotonic(), self._pending())
        if cached[1]:
            raise ServiceUnavailable(cached[1])

    @staticmethod
    def _pending() -> str:
        from django.db.migrations.executor import MigrationExecutor
        from django_tenants.utils import get_public_schema_name

        connection = connections["default"]  # this thread's own connection (the check runs in a pool thread)
        was_open = connection.connection is not None
        try:
            pending = []
            for schema in (get_public_schema_name(), settings.TENANT_BASE_SCHEMA):
                connection.set_schema(schema)
                executor = MigrationExecutor(connection)
                if executor.migration_plan(executor.loader.graph.leaf_nodes()):
                    pending.append(schema)
            return f"Unapplied migrations in {', '.join(pending)}" if pending else ""
        except DatabaseError:
            return "Migrations could not be read"
        finally:
            connection.set_schema_to_public()
            if not was_open:
                connection.close()


def reset_migrations_check() -> None:
    """Forget the kept answer (tests; after running migrations in-process)."""
    MigrationsApplied._cached = None


def _broker_client():
    return AsyncRedis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2)


def readiness_checks() -> dict[str, HealthCheck]:
    """The checks of ``/readyz`` by name. Read at each probe, so settings overrides apply."""
    return {
        "database": Database(),
        "cache": Cache(),
        "broker": Redis(client_factory=_broker_client),
        "migrations": MigrationsApplied(),
    }


async def _run(checks):
    import asyncio

    return await asyncio.gather(*(check.get_result() for check in checks))


def _refuse_unsafe(request):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    return None


def healthz(request):
    """200 while the process can answer at all; touches nothing else."""
    response = _refuse_unsafe(request) or JsonResponse({"status": "ok"})
    add_never_cache_headers(response)
    return response


def readyz(request):
    """200 with every check ``ok``, else 503; ``{"status", "checks": {name: {"status", "seconds", "error"?}}}``."""
    refused = _refuse_unsafe(request)
    if refused:
        return refused
    checks = readiness_checks()
    results = async_to_sync(_run)(list(checks.values()))
    body = {}
    for name, result in zip(checks, results):
        body[name] = {"status": "error" if result.error else "ok", "seconds": round(result.time_taken, 4)}
        if result.error:
            body[name]["error"] = str(result.error)
    failed = any(result.error for result in results)
    response = JsonResponse({"status": "unavailable" if failed else "ok", "checks": body},
                            status=503 if failed else 200)
    response._has_been_logged = True  # each failed check logged its warning already; no "Service Unavailable" per probe
    add_never_cache_headers(response)
    return response
