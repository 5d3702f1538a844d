"""Log context: every line says which request or task it belongs to, which agency, which user (by id).

- :data:`context` (a contextvar) holds the request id and the request (set by
  ``caravan.metrics.ObservabilityMiddleware``), or the task name, id and the request id that queued it
  (set by the Celery ``task_prerun`` handler in ``caravan.metrics``).
- :class:`ContextFilter` (installed on the console handler by ``settings.LOGGING``) copies them onto
  each record, with the schema and agency read from the database connection at that moment (as
  django-tenants' ``TenantContextFilter`` does), and scrubs e-mail addresses, phone numbers and
  document numbers out of the message and traceback (``caravan.observability.scrub_text``).
- :class:`JsonFormatter`: one JSON object per line (``LOG_FORMAT=json``); the text format keeps
  ``%(asctime)s %(levelname)s [%(schema_name)s] %(name)s: %(message)s``.

The user appears by numeric id only, and only once something in the request has already loaded
the user: logging never makes a query of its own.
"""
import contextvars
import json
import logging
import re
import uuid
from datetime import datetime, timezone

from django.utils.functional import SimpleLazyObject, empty

from .observability import scrub_text

context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("caravan_log_context", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_from(value: str | None) -> str:
    """The caller's ``X-Request-ID`` when it looks like an id (letters, digits, ``._:-``, ≤ 128), else a new one."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def current_request_id() -> str:
    ctx = context.get()
    return (ctx or {}).get("request_id", "")


def user_id_of(request) -> int | None:
    """The signed-in user's id if the request has already loaded its user (never loads it)."""
    if request is None:
        return None
    user = request.__dict__.get("user")  # DRF replaces the lazy object with the user it authenticated
    if isinstance(user, SimpleLazyObject):
        user = user._wrapped
        if user is empty:
            user = getattr(request, "_cached_user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return user.pk


def _agency() -> tuple[str, str, str | None]:
    """(schema, agency slug, domain) of the database connection right now; the slug is empty on the
    platform side. The connection is looked up once (each ``connection.x`` is a thread-local lookup)."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django_tenants.utils import get_public_schema_name

    connection = connections[DEFAULT_DB_ALIAS]
    tenant = getattr(connection, "tenant", None)
    domain = getattr(tenant, "domain_url", None)
    schema = getattr(connection, "schema_name", "") or ""
    if not schema or schema == get_public_schema_name():
        return schema, "", domain
    return schema, getattr(tenant, "slug", "") or "", domain


class ContextFilter(logging.Filter):
    """Adds ``schema_name``, ``domain_url``, ``agency``, ``request_id``, ``user_id``, ``task_name``,
    ``task_id`` to every record, and removes personal data from its message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_caravan_context", False):  # a second handler: done already
            return True
        record._caravan_context = True
        record.schema_name, record.agency, record.domain_url = _agency()
        ctx = context.get() or {}
        record.request_id = ctx.get("request_id", "")
        record.user_id = user_id_of(ctx.get("request"))
        record.task_name = ctx.get("task_name", "")
        record.task_id = ctx.get("task_id", "")
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave the record to logging's own error report
            return True
        record.msg, record.args = scrub_text(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub_text(record.exc_text)
        return True


# Extra fields a caller may pass (``logger.info(..., extra={...})``) that the JSON line keeps.
EXTRA_FIELDS = ("method", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC, ISO 8601), level, logger, message, request_id,
    schema, agency, user_id, task_name, task_id (the empty ones left out), the request's method,
    route, status and duration on access lines, and ``exc_info`` with the (scrubbed) traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "schema_name", "agency", "user_id", "task_name", "task_id", *EXTRA_FIELDS):
            value = getattr(record, key, None)
            if value not in (None, ""):
                line["schema" if key == "schema_name" else key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub_text(self.formatException(record.exc_info))
        if record.exc_text:
            line["exc_info"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(*, fmt: str, level: str) -> dict:
    """``settings.LOGGING`` for ``LOG_FORMAT`` ``text`` or ``json``."""
    if fmt not in ("text", "json"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {fmt!r}.")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"agency": {"()": "caravan.logs.ContextFilter"}},
        "formatters": {
            "agency": {"format": "%(asctime)s %(levelname)s [%(schema_name)s] %(name)s: %(message)s"},
            "json": {"()": "caravan.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "filters": ["agency"],
                        "formatter": "json" if fmt == "json" else "agency"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
