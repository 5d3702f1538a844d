"""Riding out a lost PostgreSQL connection (a failover, a restart, ``pg_terminate_backend``).

Django notices a dead connection at the start of the next request (``CONN_HEALTH_CHECKS``), but a
request whose connection dies under it fails with ``OperationalError``/``InterfaceError``: a 500.
:class:`RetryLostConnectionMiddleware` answers such a request once more on a new connection when
that is safe:

- only GET and HEAD (reads; a POST may have half-written and is never repeated: it gets a 503 saying
  the connection was lost, so the client checks before sending it again);
- only when the error is a lost connection (:func:`connection_lost`), not e.g. a statement timeout;
- only once per request, and never inside a transaction that is still open.

A failure in the view (the usual place) is caught by ``process_exception`` and only the view runs
again. A failure in the middleware before it (the session and user are read there) has already
been turned into a 500 by Django; the middleware then runs everything inside it once more. It sits
before ``AgencyMainMiddleware``, so the agency is set again on the new connection; django-tenants
sets the ``search_path`` on every new connection's first cursor (``caravan.db`` on every statement).

A streamed response (CSV exports) is produced after the view returned. If its connection is lost
before the first chunk, the view runs once more; after the first chunk the transfer cannot be
repeated, so the cut is made visible: a CSV gets a last line saying the file is incomplete, and the
error is raised on, so the server aborts the connection instead of ending the response cleanly
(a client sees a truncated transfer, never a file that merely looks shorter).
"""
import logging
import sys

from django.core.signals import got_request_exception
from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.dispatch import receiver
from django.shortcuts import render
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

RETRY_METHODS = frozenset({"GET", "HEAD"})
# admin_shutdown (pg_terminate_backend), crash_shutdown, cannot_connect_now; class 08: connection exceptions.
_LOST_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a database error because a connection went away (rather than a bad query)."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    if sqlstate in _LOST_SQLSTATES or sqlstate.startswith("08"):
        return True
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is not None and (getattr(raw, "closed", False) or getattr(raw, "broken", False)):
            return True
    return False


def _safe_to_repeat() -> bool:
    return not any(conn.in_atomic_block for conn in connections.all(initialized_only=True))


def _drop_dead_connections() -> None:
    """Close every connection whose server side is gone; the next query opens a new one (and
    django-tenants sets the agency's search_path on it)."""
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is None or not (getattr(raw, "closed", False) or getattr(raw, "broken", False)):
            continue
        try:
            conn.close()
        except DatabaseError:
            conn.connection = None


def _may_retry(request, exc: BaseException) -> bool:
    return (request.method in RETRY_METHODS and not getattr(request, "_db_retried", False)
            and connection_lost(exc) and _safe_to_repeat())


@receiver(got_request_exception, dispatch_uid="caravan.dbfaults.note_lost_connection")
def _note_lost_connection(sender, request=None, **kwargs):
    """Django turned an exception raised before or around the view into a 500: remember whether
    it was a lost connection (the exception is the one being handled)."""
    exc = sys.exc_info()[1]
    if request is not None and exc is not None and connection_lost(exc):
        request._db_connection_lost = True


class RetryLostConnectionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (getattr(request, "_db_connection_lost", False) and request.method in RETRY_METHODS
                and not getattr(request, "_db_retried", False) and _safe_to_repeat()):
            request._db_retried = True
            request._db_connection_lost = False
            logger.warning("Database connection lost while answering %s %s; answering once more",
                           request.method, request.path)
            _drop_dead_connections()
            response = self.get_response(request)
        if getattr(response, "streaming", False) and not getattr(response, "is_async", False):
            response.streaming_content = _guarded(response.streaming_content, request,
                                                  response.get("Content-Type", ""))
        return response

    def process_exception(self, request, exception):
        if not _may_retry(request, exception):
            if connection_lost(exception) and _safe_to_repeat():
                return _unavailable(request)
            return None
        request._db_retried = True
        logger.warning("Database connection lost in the view for %s %s; running it once more",
                       request.method, request.path)
        _drop_dead_connections()
        match = request.resolver_match
        return match.func(request, *match.args, **match.kwargs)


def _unavailable(request):
    """A write (or a read already repeated) whose connection was lost: a 503 saying so, never run
    again here — the client decides, after checking what was saved."""
    logger.warning("Database connection lost while answering %s %s; not repeated", request.method, request.path)
    _drop_dead_connections()
    message = _("The database connection was lost while answering. Please check whether your change "
                "was saved before trying again.")
    if request.path.startswith("/api/"):
        from caravan.api.errors import error_response

        response = error_response("database_unavailable", message, status=503)
    else:
        response = render(request, "errors/database_unavailable.html", {"message": message}, status=503)
    response["Retry-After"] = "5"
    return response


def _guarded(chunks, request, content_type: str):
    """The streamed chunks; a lost connection before the first is retried (GET, once), any failure
    after it ends the stream visibly (see the module docstring)."""
    sent = False
    try:
        for chunk in chunks:
            sent = True
            yield chunk
    except Exception as exc:
        if not sent and _may_retry(request, exc):
            request._db_retried = True
            logger.warning("Database connection lost before streaming %s; running the view once more", request.path)
            _drop_dead_connections()
            match = request.resolver_match
            again = match.func(request, *match.args, **match.kwargs)
            if not getattr(again, "streaming", False):
                raise
            yield from _guarded(again.streaming_content, request, content_type)
            return
        logger.exception("Streamed response for %s cut after it started", request.path)
        if sent and content_type.startswith("text/csv"):
            line = _("ERROR: the export was interrupted here; this file is incomplete. Please download it again.")
            yield f'\r\n"{line}"\r\n'.encode()
        raise
