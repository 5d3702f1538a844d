"""Prometheus metrics, the request id, and the middleware that answers the probes.

:class:`ObservabilityMiddleware` comes first in ``MIDDLEWARE``, before the host is looked up:

- ``/healthz``, ``/readyz`` (``caravan.health``) and ``/metrics`` are answered on any host, known or
  not, so load balancers and Prometheus can reach a pod by its address;
- every other request gets a request id (a sane ``X-Request-ID`` from the caller, else a new one,
  echoed in the response), the log context of ``caravan.logs``, one access line on the
  ``caravan.request`` logger, and the HTTP metrics below.

Metrics (docs/operations.md, "Health, metrics and logs"):

- ``caravan_http_requests_total{route,method,status}``, ``caravan_http_request_duration_seconds{route,method}``
  and ``caravan_http_errors_total{route,method,status}`` (5xx). ``route`` is the URL pattern's name
  (``api:customer-detail``) or, without one, its pattern — never the path, so no ids or tokens — and
  ``unmatched``, ``static`` or ``no_agency`` outside the URL maps; ``status`` is the class (``2xx``).
- ``caravan_agency_requests_total{agency}``: requests on agency hosts, by agency, for at most
  ``METRICS_TOP_AGENCIES`` agencies; all others are ``other`` (:class:`AgencyLabels`).
- ``caravan_celery_tasks_total{task,outcome}`` (succeeded, failed, retried) and
  ``caravan_celery_task_duration_seconds{task}``, counted by Celery signals in the worker.
- read at scrape time: ``caravan_celery_queue_length{queue}`` (LLEN of each queue in the broker),
  ``caravan_db_connections{state}`` (pg_stat_activity of our database) and
  ``caravan_db_max_connections``.

Several processes (gunicorn workers, a prefork Celery pool) need prometheus_client's multiprocess
mode: ``PROMETHEUS_MULTIPROC_DIR`` set to an empty directory per host and process kind. The worker
serves its own metrics on ``WORKER_METRICS_PORT`` (:func:`_serve_worker_metrics`).
"""
import hmac
import logging
import os
import threading
import time

import sentry_sdk
from celery.signals import (before_task_publish, task_failure, task_postrun, task_prerun, task_retry,
                            task_success, worker_ready)
from django.conf import settings
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseNotFound
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from django_tenants.utils import get_public_schema_name
from prometheus_client.core import GaugeMetricFamily

from . import health
from .logs import REQUEST_ID_HEADER, context, request_id_from

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("caravan.request")

HTTP_REQUESTS = Counter("caravan_http_requests", "HTTP requests answered, by route, method and status class.",
                        ["route", "method", "status"])
HTTP_ERRORS = Counter("caravan_http_errors", "HTTP requests answered with a server error (5xx).",
                      ["route", "method", "status"])
HTTP_DURATION = Histogram("caravan_http_request_duration_seconds", "Time to answer an HTTP request.",
                          ["route", "method"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
AGENCY_REQUESTS = Counter("caravan_agency_requests", "HTTP requests on agency hosts, by agency "
                          "(the first METRICS_TOP_AGENCIES agencies seen; the others are 'other').", ["agency"])
TASKS = Counter("caravan_celery_tasks", "Celery tasks finished, by task name and outcome.", ["task", "outcome"])
TASK_DURATION = Histogram("caravan_celery_task_duration_seconds", "Time a Celery task ran.", ["task"],
                          buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800))

METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
OTHER = "other"


# --- Agency labels ---------------------------------------------------------------------------------

class AgencyLabels:
    """Which agencies keep their slug as a metric label: at most ``limit`` of them, all others ``other``.

    The slots are one Redis set shared by every process (web workers, pods), filled first come,
    first served, atomically, and never emptied while the processes run: so the label values, summed
    over all processes, are at most ``limit + 1``. (A per-process table would give each gunicorn
    worker its own first ``limit`` and their union would not be bounded.) Agencies with the most
    traffic are, with high probability, the first to arrive after a start. Each process asks Redis
    once per slug until the table is full, then only reads its own copy; if Redis cannot be reached
    the answer is ``other`` for now.
    """

    SCRIPT = """
    if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
    if redis.call('SCARD', KEYS[1]) < tonumber(ARGV[2]) then
        redis.call('SADD', KEYS[1], ARGV[1])
        return 1
    end
    return 0
    """

    def __init__(self, limit: int, key: str, client=None):
        self.limit = limit
        self.key = key
        self._client = client
        self._script = None
        self._labelled: set[str] = set()
        self._full = limit <= 0
        self._lock = threading.Lock()

    def client(self):
        if self._client is None:
            from django_redis import get_redis_connection

            self._client = get_redis_connection("default")
        return self._client

    def label(self, slug: str) -> str:
        if slug in self._labelled:
            return slug
        if self._full:
            return OTHER
        with self._lock:
            if slug in self._labelled or self._full:  # another thread asked while this one waited
                return slug if slug in self._labelled else OTHER
            try:
                if self._script is None:
                    self._script = self.client().register_script(self.SCRIPT)
                if self._script(keys=[self.key], args=[slug, self.limit]):
                    self._labelled.add(slug)
                    return slug
                # Full: take the slugs other processes placed, so this one labels them alike.
                members = self.client().smembers(self.key)
                self._labelled.update(m.decode() if isinstance(m, bytes) else m for m in members)
                self._full = True
            except Exception:  # metrics must never fail a request
                logger.warning("Agency metric label table unavailable", exc_info=True)
                return OTHER
        return slug if slug in self._labelled else OTHER


_agency_labels: AgencyLabels | None = None


def agency_label(slug: str) -> str:
    global _agency_labels
    if _agency_labels is None:
        _agency_labels = AgencyLabels(settings.METRICS_TOP_AGENCIES,
                                      f"{settings.CACHES['default'].get('KEY_PREFIX', 'caravan')}:metrics:agency-labels")
    return _agency_labels.label(slug)


# --- HTTP --------------------------------------------------------------------------------------------

def route_label(request) -> str:
    """The URL pattern that answered (its name, else its pattern); never the path itself."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match.route or "unnamed"
    if not hasattr(request, "tenant"):
        return "no_agency"  # unknown host (or one refused before routing)
    if request.path_info.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def _tenant_slug(request) -> str | None:
    tenant = getattr(request, "tenant", None)
    if tenant is None or tenant.schema_name == get_public_schema_name():
        return None
    return tenant.slug


# (metric, label values) -> the metric's child: what ``metric.labels(...)`` returns, without its
# checks and lock on every request. Bounded as the labels are (routes, methods, status classes,
# METRICS_TOP_AGENCIES + 1 agencies).
_children: dict[tuple, object] = {}


def _child(metric, *labels):
    child = _children.get((metric, labels))
    if child is None:
        child = _children[(metric, labels)] = metric.labels(*labels)
    return child


def observe_request(request, response, seconds: float) -> str:
    route = route_label(request)
    method = request.method if request.method in METHODS else OTHER
    status = status_class(response.status_code)
    _child(HTTP_REQUESTS, route, method, status).inc()
    _child(HTTP_DURATION, route, method).observe(seconds)
    if response.status_code >= 500:
        _child(HTTP_ERRORS, route, method, status).inc()
    slug = _tenant_slug(request)
    if slug:
        _child(AGENCY_REQUESTS, agency_label(slug)).inc()
    return route


class ObservabilityMiddleware:
    """First in MIDDLEWARE (after caravan.handlers.TokenAPIRouter, so in both chains): probes and /metrics on
    any host; request id, log context, metrics."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.endpoints = {"/healthz": health.healthz, "/readyz": health.readyz, "/metrics": metrics_view}

    def __call__(self, request):
        endpoint = self.endpoints.get(request.path_info.rstrip("/"))
        if endpoint is not None:
            return endpoint(request)
        request_id = request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        sentry_sdk.get_isolation_scope().set_tag("request_id", request_id)  # an error report names its log lines
        token = context.set({"request_id": request_id, "request": request})
        try:
            start = time.perf_counter()
            response = self.get_response(request)
            seconds = time.perf_counter() - start
            response[REQUEST_ID_HEADER] = request_id
            try:
                route = observe_request(request, response, seconds)
            except Exception:  # never fail a request over its metrics
                logger.warning("Request metrics failed", exc_info=True)
                route = "?"
            access_logger.info("%s %s status %s in %.1f ms", request.method, route, response.status_code, seconds * 1000,
                               extra={"method": request.method, "route": route, "status": response.status_code,
                                      "duration_ms": round(seconds * 1000, 1)})
            return response
        finally:
            context.reset(token)


# --- Scrape-time figures -----------------------------------------------------------------------------

_broker = None


def _broker_client():
    global _broker
    if _broker is None:
        import redis

        _broker = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2)
    return _broker


def celery_queues() -> list[str]:
    from .celery import app

    names = {app.conf.task_default_queue}
    for queue in app.conf.task_queues or ():
        names.add(queue.name)
    return sorted(names)


# kombu's Redis transport keeps messages of priority p > 0 in "<queue>\x06\x16<p>".
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


class ScrapeCollector:
    """Queue lengths and database connections, read when Prometheus scrapes (one pipeline, one query)."""

    def collect(self):
        queues = GaugeMetricFamily("caravan_celery_queue_length", "Messages waiting in a Celery queue.",
                                   labels=["queue"])
        try:
            names = celery_queues()
            pipe = _broker_client().pipeline(transaction=False)
            for name in names:
                for suffix in _PRIORITY_SUFFIXES:
                    pipe.llen(name + suffix)
            lengths = pipe.execute()
            for i, name in enumerate(names):
                step = len(_PRIORITY_SUFFIXES)
                queues.add_metric([name], sum(lengths[i * step:(i + 1) * step]))
        except Exception:
            logger.warning("Could not read the Celery queue lengths", exc_info=True)
        yield queues

        conns = GaugeMetricFamily("caravan_db_connections", "Connections to our database, by state "
                                  "(pg_stat_activity; behind PgBouncer: its server connections).", labels=["state"])
        limit = GaugeMetricFamily("caravan_db_max_connections", "PostgreSQL's max_connections.")
        try:
            from django.db import connection

            with connection.cursor() as cursor:
                # Never empty: this query's own backend is one of the rows.
                cursor.execute("SELECT coalesce(state, 'unknown'), count(*), current_setting('max_connections')::int "
                               "FROM pg_stat_activity WHERE datname = current_database() GROUP BY 1 ORDER BY 1")
                rows = cursor.fetchall()
            for state, count, _max in rows:
                conns.add_metric([state], count)
            if rows:
                limit.add_metric([], rows[0][2])
        except Exception:
            logger.warning("Could not read the database connections", exc_info=True)
        yield conns
        yield limit


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def process_registry() -> CollectorRegistry:
    """This process's metrics, or every process's of the directory in multiprocess mode."""
    if not multiprocess_dir():
        return REGISTRY
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def exposition() -> bytes:
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(ScrapeCollector())
    return generate_latest(process_registry()) + generate_latest(scrape)


def authorised(request) -> bool:
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), settings.METRICS_TOKEN.encode())


def metrics_view(request):
    """``/metrics`` in Prometheus' text format, for ``Authorization: Bearer <METRICS_TOKEN>`` only.

    404 when ``METRICS_TOKEN`` is not set (metrics are off); 401 without the token or with another
    one — a session, an agency's API token or an operator's sign-in do not count."""
    if not settings.METRICS_TOKEN:
        return HttpResponseNotFound()
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    if not authorised(request):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


# --- Celery --------------------------------------------------------------------------------------------

_task_started: dict[str, tuple[float, object]] = {}


def _header(task, name):
    headers = getattr(task.request, "headers", None) or {}
    return headers.get(name) or task.request.get(name)


@before_task_publish.connect(dispatch_uid="caravan.metrics.request_id")
def _stamp_request_id(headers=None, **kwargs):
    """A task queued during a request carries its request id, so their log lines can be joined."""
    request_id = (context.get() or {}).get("request_id")
    if request_id and headers is not None:
        headers.setdefault("caravan_request_id", request_id)


@task_prerun.connect(dispatch_uid="caravan.metrics.prerun")
def _task_prerun(task_id=None, task=None, **kwargs):
    token = context.set({"task_name": task.name, "task_id": task_id,
                         "request_id": _header(task, "caravan_request_id") or ""})
    _task_started[task_id] = (time.perf_counter(), token)


@task_postrun.connect(dispatch_uid="caravan.metrics.postrun")
def _task_postrun(task_id=None, task=None, **kwargs):
    started = _task_started.pop(task_id, None)
    if started is None:
        return
    TASK_DURATION.labels(task.name).observe(time.perf_counter() - started[0])
    try:
        context.reset(started[1])
    except ValueError:  # set in another context (eager calls nested in a request): leave it
        pass


@task_success.connect(dispatch_uid="caravan.metrics.success")
def _task_succeeded(sender=None, **kwargs):
    TASKS.labels(sender.name, "succeeded").inc()


@task_failure.connect(dispatch_uid="caravan.metrics.failure")
def _task_failed(sender=None, **kwargs):
    TASKS.labels(sender.name, "failed").inc()


@task_retry.connect(dispatch_uid="caravan.metrics.retry")
def _task_retried(sender=None, **kwargs):
    TASKS.labels(sender.name, "retried").inc()


@worker_ready.connect(dispatch_uid="caravan.metrics.worker_http")
def _serve_worker_metrics(sender=None, **kwargs):
    """The worker's task metrics on ``WORKER_METRICS_PORT`` (no token: keep the port inside the
    cluster). With a prefork pool the tasks run in child processes, whose counts reach this server
    only through ``PROMETHEUS_MULTIPROC_DIR``."""
    port = settings.WORKER_METRICS_PORT
    if not port:
        return
    from prometheus_client import start_http_server

    if not multiprocess_dir() and "prefork" in type(getattr(sender, "pool", None)).__module__:
        logger.warning("WORKER_METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: the pool's task counts are not seen")
    server, _thread = start_http_server(port, registry=process_registry())
    logger.info("Worker metrics on port %s", port)
    return server

