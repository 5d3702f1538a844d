"""django-tenants behind PgBouncer in transaction-pooling mode (ENGINE ``caravan.db``).

django-tenants sets the agency's ``search_path`` once per connection with a session-level ``SET``
and remembers that it did. Behind PgBouncer in transaction mode, a client connection is lent a
server connection only for one transaction (in autocommit, one statement): the ``SET`` lands on
one server connection and the next query may run on another, whose ``search_path`` was left by
another agency. That is a cross-tenant read or write.

This backend makes every statement carry its own search path: each query text sent to the server
starts with ``SET LOCAL search_path = "<agency>", "public";`` in the same simple-protocol Query
message (psycopg's client-side binding cursor, Django's default). PostgreSQL runs a multi-statement
Query in one (implicit or explicit) transaction, and PgBouncer hands the server connection back
only when the server reports it idle after the whole message, so the ``SET`` and the statement
always run on the same server connection. ``SET LOCAL`` ends with the transaction, so nothing is
left behind for the next client of that server connection. The proof does not depend on tracking
where Django begins or ends a transaction (savepoint rollbacks, a tenant switch inside ``atomic``,
errors): there is no cached state to go stale.

What cannot share a Query message gets its own transaction instead:
- ``COPY`` (psycopg refuses a COPY mixed with other statements): ``SET LOCAL`` first, then the COPY,
  inside the caller's transaction or, in autocommit, inside one opened for it;
- ``executemany`` (psycopg pipelines it over the extended protocol, one statement per message):
  the same;
- ``stream()`` is refused (nothing in Caravan uses it).
Server-side (named) cursors are disabled (``DISABLE_SERVER_SIDE_CURSORS``): a cursor declared in
one transaction does not exist on the next server connection. Prepared statements stay off
(Django's psycopg default, ``prepare_threshold=None``), and server-side binding, which cannot send
two statements in one message, is refused.

The session (plain) deployment uses ``caravan.db.session`` (django-tenants' backend, its health
check the ``SET search_path``): settings.py chooses this engine only when ``DATABASE_POOLING=transaction``.
"""
import re
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.db import NotSupportedError
from django.db.backends.postgresql.base import Cursor as DjangoClientCursor
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from django_tenants.utils import quote_schema_name

# Statements PostgreSQL refuses inside a transaction block and which do not read search_path.
# Everything else gets the SET LOCAL; a statement that cannot run in a transaction block (e.g.
# CREATE INDEX CONCURRENTLY) then fails loudly rather than running on some other agency's path.
_NO_PREFIX = re.compile(r"\s*(CREATE|DROP)\s+DATABASE\b", re.IGNORECASE)


class PooledCursor(DjangoClientCursor):
    """Client-side binding cursor that sends the agency's search path with every statement."""

    _search_path_owner = None  # the DatabaseWrapper; None on cursors Django opens on the raw connection

    def _search_path_sql(self) -> str | None:
        owner = self._search_path_owner
        return owner.local_search_path_sql if owner is not None else None

    def execute(self, query, params=None, **kwargs):
        path = self._search_path_sql()
        if path is None or (isinstance(query, str) and _NO_PREFIX.match(query)):
            return super().execute(query, params, **kwargs)
        super().execute(_prefixed(path, query, params), params, **kwargs)
        self.nextset()  # the SET's result first; the caller reads its own statement's
        return self

    def executemany(self, query, params_seq, *, returning=False):
        path = self._search_path_sql()
        if path is None:
            return super().executemany(query, params_seq, returning=returning)
        with self._own_transaction(path):
            return super().executemany(query, params_seq, returning=returning)

    @contextmanager
    def copy(self, statement, params=None, *, writer=None):
        path = self._search_path_sql()
        if path is None:
            with super().copy(statement, params, writer=writer) as copy:
                yield copy
            return
        with self._own_transaction(path), super().copy(statement, params, writer=writer) as copy:
            yield copy

    def stream(self, *args, **kwargs):
        if self._search_path_sql() is not None:
            raise NotSupportedError("cursor.stream() cannot carry the agency's search path through PgBouncer "
                                    "in transaction mode; use execute() and fetchmany().")
        return super().stream(*args, **kwargs)

    @contextmanager
    def _own_transaction(self, path: str):
        """``SET LOCAL`` as its own statement, in the caller's transaction or in one opened here."""
        if self.connection.autocommit:
            with self.connection.transaction():
                super().execute(path)
                yield
        else:
            super().execute(path)
            yield


def _prefixed(path: str, query, params):
    if isinstance(query, bytes):
        return path.encode() + b"; " + query
    if isinstance(query, str):
        # With parameters psycopg reads %-placeholders, so a literal % in the path must be doubled.
        return f"{path.replace('%', '%%') if params is not None else path}; {query}"
    from psycopg import sql

    return sql.SQL("; ").join([sql.SQL(path.replace("%", "%%") if params is not None else path), query])


class DatabaseWrapper(TenantDatabaseWrapper):
    """django-tenants' wrapper whose cursors carry the search path in every statement."""

    local_search_path_sql = None

    def __init__(self, settings_dict, *args, **kwargs):
        options = settings_dict.get("OPTIONS") or {}
        if options.get("server_side_binding"):
            raise ImproperlyConfigured("caravan.db (PgBouncer transaction mode) needs client-side binding: "
                                       "remove OPTIONS['server_side_binding'].")
        if options.get("prepare_threshold") is not None:
            raise ImproperlyConfigured("caravan.db (PgBouncer transaction mode) cannot use prepared statements: "
                                       "remove OPTIONS['prepare_threshold'].")
        # A server-side cursor declared in one transaction is gone on the next server connection.
        settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
        super().__init__(settings_dict, *args, **kwargs)

    def set_tenant(self, tenant, include_public=True):
        super().set_tenant(tenant, include_public)
        paths = ", ".join(quote_schema_name(s) for s in self._get_cursor_search_paths())  # validates each name
        self.local_search_path_sql = f"SET LOCAL search_path = {paths}"

    def _handle_search_path(self, cursor=None):
        """No session-level ``SET``: every statement carries its own (see PooledCursor)."""

    def get_connection_params(self):
        params = super().get_connection_params()
        params["cursor_factory"] = PooledCursor
        return params

    def create_cursor(self, name=None):
        if name:
            raise NotSupportedError("Server-side cursors do not survive PgBouncer's transaction pooling.")
        cursor = super().create_cursor()
        cursor._search_path_owner = self
        return cursor
