"""Creating agency schemas fast: clone a migrated template instead of replaying migrations.

The template schema (``settings.TENANT_BASE_SCHEMA``) is migrated alongside every agency by
``manage.py migrate_platform`` and never holds users, sessions or tokens: only what migrations
themselves write (content types, permissions, django_migrations). Cloning it with data copies
exactly that, so a clone is identical to a freshly migrated schema (tests/test_onboarding.py
proves it) and needs no fake migration run. bench/onboarding.py measures both ways.
"""
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.clone import CLONE_SCHEMA_FUNCTION
from django_tenants.utils import schema_exists

TEMPLATE = settings.TENANT_BASE_SCHEMA
# Tables that must stay empty in the template: anything that would leak into every new agency.
_MUST_BE_EMPTY = ("accounts_user", "django_session", "authtoken_token")


def install_clone_function() -> None:
    """(Re)install django-tenants' clone_schema() SQL function once, not per onboarding."""
    db_user = settings.DATABASES["default"].get("USER") or "postgres"
    with connection.cursor() as cursor:
        cursor.execute(CLONE_SCHEMA_FUNCTION.format(db_user=db_user))


def clone_function_installed() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                       "WHERE n.nspname = 'public' AND p.proname = 'clone_schema'")
        return cursor.fetchone() is not None


def template_ready() -> bool:
    return schema_exists(TEMPLATE)


def migrate_template(verbosity: int = 1) -> None:
    """Create the template schema if missing, bring it to the latest migrations, check it is clean."""
    connection.set_schema_to_public()
    if not schema_exists(TEMPLATE):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{TEMPLATE}"')
    call_command("migrate_schemas", schema_name=TEMPLATE, executor="standard",
                 interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        for table in _MUST_BE_EMPTY:
            cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{TEMPLATE}"."{table}")')
            if cursor.fetchone()[0]:
                raise RuntimeError(f"The template schema holds rows in {table}; it must never hold users or sessions.")
    install_clone_function()


def clone_template(schema_name: str) -> None:
    """Copy the template into a new schema inside the caller's transaction."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT clone_schema(%s, %s, 'DATA')", [TEMPLATE, schema_name])


def migrate_new_schema(schema_name: str, verbosity: int = 0) -> None:
    """The slow way: create an empty schema and replay every tenant migration into it."""
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema_name}"')
    call_command("migrate_schemas", schema_name=schema_name, executor="standard",
                 interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()


def create_agency_schema(schema_name: str, *, method: str = "auto", verbosity: int = 0) -> str:
    """Create ``schema_name`` by cloning the template ("clone") or migrating ("migrate").

    "auto" clones when the template exists. Returns the method used.
    """
    if method == "auto":
        method = "clone" if template_ready() and clone_function_installed() else "migrate"
    if method == "clone":
        clone_template(schema_name)
    else:
        migrate_new_schema(schema_name, verbosity=verbosity)
    return method
