"""django-tenants on a direct PostgreSQL connection (or PgBouncer in session mode): ENGINE ``caravan.db.session``.

django-tenants' own backend, with one round trip less per request. Django checks a reused connection
before the first query of each request (``CONN_HEALTH_CHECKS``: ``SELECT 1``) and django-tenants then
sets the agency's ``search_path`` (``SET search_path``): two round trips before the request's own
first statement, a fifth of the statements of a small API call (issue 22). Here the health check *is*
that ``SET`` when one is due: it proves the connection alive just as well, and it is the very
statement django-tenants would send next, with the same text and the same bookkeeping
(``search_path_set_schemas``), so django-tenants then skips its own. When the check fails the
connection is closed and a new one made, and django-tenants sets the path on it as always.

Only with ``TENANT_LIMIT_SET_CALLS`` (settings.py): without it django-tenants sets the path on every
cursor, and the check stays ``SELECT 1``. Behind PgBouncer in transaction mode, ``caravan.db``
(every statement carries its own path) is the engine instead.

On this engine a connection keeps its session, so the few statements of every request can be
prepared once per connection (``caravan.db.prepared``).
"""
from django.db.backends.postgresql.base import Database
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from django_tenants.utils import get_limit_set_calls, quote_schema_name


class DatabaseWrapper(TenantDatabaseWrapper):
    prepares_statements = True  # caravan.db.prepared: a connection keeps its session (not PgBouncer's transaction mode)

    def is_usable(self):
        if (self.connection is None or self.search_path_set_schemas or not self.schema_name
                or not get_limit_set_calls()):
            return super().is_usable()
        paths = self._get_cursor_search_paths()
        try:
            with self.connection.cursor() as cursor:  # psycopg's own, as Django's check
                cursor.execute("SET search_path = {}".format(",".join(quote_schema_name(s) for s in paths)))
        except Database.Error:
            return False
        self.search_path_set_schemas = paths
        return True
