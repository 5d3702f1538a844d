"""Personal data: recording access, pruning the access log, and the per-customer data export.

``access_record`` is the one way an access is logged, from a page, the API, a service or a task:
one INSERT and no read. The request id and the client's address come from the request being
served (``caravan.logs.context``, set by ``caravan.metrics.ObservabilityMiddleware``), so callers
need not pass the request through the services that reveal or export data.
"""
import ipaddress
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import connection
from django.utils import timezone

from caravan.clients import request_address
from caravan.db.prepared import execute_prepared
from caravan.logs import context as log_context

from .models import AccessEntry

What = AccessEntry.What
Via = AccessEntry.Via


def _request_facts() -> tuple[str, str | None, str]:
    """(request id, client address, via) of the request or task being served, if any."""
    ctx = log_context.get() or {}
    request = ctx.get("request")
    address = None
    via = Via.TASK
    if request is not None:
        via = Via.API if request.path.startswith("/api/") else Via.PAGE
        raw = request_address(request)  # the address every per-address limit uses
        try:
            address = str(ipaddress.ip_address(raw)) if raw else None
        except ValueError:
            address = None
    return (ctx.get("request_id") or "")[:64], address, via


def access_record(*, user, what: str, via: str | None = None, customer=None, customer_id: int | None = None,
                  detail: str = "") -> None:
    """Log that ``user`` accessed ``customer``'s data (``what``, ``via`` page/api/task). One INSERT.

    ``customer`` or ``customer_id`` (none for the list export; ``detail`` then says which filters).
    Without ``via``, the request being served says it (``/api/…``: api, else page; none: task).
    The INSERT is written out (``_insert_sql``): it runs on every card view and screen pop, and
    compiling ``objects.create()`` was a tenth of the screen pop's Python time (issue 22); and
    prepared once per connection (``caravan.db.prepared``)."""
    if customer is not None:
        customer_id = customer.pk
    request_id, address, seen_via = _request_facts()
    with connection.cursor() as cursor:
        execute_prepared(cursor, _insert_sql(), [timezone.now(), getattr(user, "pk", None), customer_id, what,
                                       via or seen_via, (detail or "")[:300], request_id, address])


@cache
def _insert_sql() -> str:
    """The entry's INSERT, unqualified: the active schema's table (search_path), as the ORM's. Every
    column is given (no database default applies); a test checks the list against the model's fields."""
    qn = connection.ops.quote_name
    columns = ", ".join(qn(AccessEntry._meta.get_field(name).column) for name in INSERT_FIELDS)
    placeholders = ", ".join(["%s"] * len(INSERT_FIELDS))
    return f"INSERT INTO {qn(AccessEntry._meta.db_table)} ({columns}) VALUES ({placeholders})"


INSERT_FIELDS = ("at", "user", "customer", "what", "via", "detail", "request_id", "address")


def access_log_prune(*, now=None) -> int:
    """Delete entries older than ``ACCESS_LOG_RETENTION_DAYS`` (0 keeps them all). One DELETE."""
    days = settings.ACCESS_LOG_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = AccessEntry.objects.filter(at__lt=cutoff).delete()
    return deleted


def access_log_next_prune(*, now=None):
    """When the oldest entry passes the retention period (None: nothing to prune, ever or yet)."""
    days = settings.ACCESS_LOG_RETENTION_DAYS
    oldest = AccessEntry.objects.order_by("at").values_list("at", flat=True).first()
    if days <= 0 or oldest is None:
        return None
    return max(oldest + timedelta(days=days), now or timezone.now())
