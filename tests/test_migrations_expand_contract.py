"""Zero-downtime rule: migrations expand, a later release contracts (docs/operations.md).

``migrate_platform`` runs while the previous release still serves (the Helm chart's pre-upgrade
Job, compose's ``migrate`` before the new containers), and agency schemas are migrated one after
another, so every migration must leave a schema the *previous* release's code can still read and
write. This test walks every migration of Caravan's own apps and fails on an operation that breaks
that:

- drops or renames a column or table: ``RemoveField``, ``RenameField``, ``DeleteModel``,
  ``RenameModel``, ``AlterModelTable``, or ``RunSQL`` with ``DROP COLUMN``/``DROP TABLE``/``RENAME``;
- adds a ``NOT NULL`` column without a database default (``AddField`` without ``null=True`` or
  ``db_default=``, on a table an earlier migration created): the old code's inserts omit it;
- makes an existing column ``NOT NULL`` without a database default (``AlterField``).

A migration that must do one of these (the *contract* step, once no running release reads the old
shape) is listed in ``CONTRACTS`` with the reason and the release it contracts after; an entry
that no longer matches anything fails too, so the list stays true.
"""
import re
from pathlib import Path

import pytest
from django.apps import apps
from django.db import migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.models import NOT_PROVIDED

ROOT = Path(__file__).resolve().parents[1]

BEFORE_THE_RULE = "before issue 17's rule"
# (app label, migration name) → why it may contract, and after which release.
CONTRACTS: dict[tuple[str, str], str] = {
    ("integrations", "0002_feed_credentials_in_owner_schema"):
        f"{BEFORE_THE_RULE}: drops Feed's credential columns in the release that moved them to the owner's "
        "schema (integrations.credentials) and stopped reading them",
    ("care", "0002_links_to_trips"):
        f"{BEFORE_THE_RULE}: Survey.customer/trip are NOT NULL foreign keys added right after Survey's table "
        "was created in 0001 of the same release (no running code wrote surveys yet)",
    ("tiers", "0002_tier_value_segments"):
        f"{BEFORE_THE_RULE}: ServiceTier.value_segments NOT NULL with a Python default only; today it would "
        "take db_default=[]",
}

SQL_CONTRACTS = re.compile(r"\bDROP\s+(COLUMN|TABLE)\b|\bRENAME\b", re.IGNORECASE)


def own_app_labels() -> set[str]:
    """Apps whose code lives in this checkout (not in the virtualenv's site-packages)."""
    venv = ROOT / ".venv"
    return {app.label for app in apps.get_app_configs()
            if Path(app.path).resolve().is_relative_to(ROOT) and not Path(app.path).resolve().is_relative_to(venv)}


def _sql_text(sql) -> str:
    if isinstance(sql, (list, tuple)):
        return " ".join(_sql_text(s) for s in sql)
    return sql if isinstance(sql, str) else ""


def violations(migration, state_before=None) -> list[str]:
    """What in ``migration`` the previous release's code could not survive. ``state_before`` (a
    callable returning the ProjectState before the migration) is needed to judge ``AlterField``."""
    found = []
    created = {op.name_lower for op in migration.operations if isinstance(op, migrations.CreateModel)}

    def check(operation):
        name = type(operation).__name__
        if isinstance(operation, migrations.SeparateDatabaseAndState):
            for inner in operation.database_operations:
                check(inner)
        elif isinstance(operation, (migrations.RemoveField, migrations.RenameField)):
            found.append(f"{name} {operation.model_name}.{getattr(operation, 'name', None) or operation.old_name}")
        elif isinstance(operation, (migrations.DeleteModel, migrations.RenameModel, migrations.AlterModelTable)):
            found.append(f"{name} {getattr(operation, 'name', None) or operation.old_name}")
        elif isinstance(operation, migrations.RunSQL):
            match = SQL_CONTRACTS.search(_sql_text(operation.sql))
            if match:
                found.append(f"RunSQL with {match.group(0).upper()}")
        elif isinstance(operation, migrations.AddField):
            field = operation.field
            if (operation.model_name_lower not in created and not field.null and field.db_default is NOT_PROVIDED
                    and not field.many_to_many and not getattr(field, "generated", False)):
                found.append(f"AddField {operation.model_name}.{operation.name} NOT NULL without db_default")
        elif isinstance(operation, migrations.AlterField):
            field = operation.field
            if not field.null and field.db_default is NOT_PROVIDED and state_before is not None:
                model = state_before().models.get((migration.app_label, operation.model_name_lower))
                old = model.fields.get(operation.name) if model else None
                if old is not None and old.null:
                    found.append(f"AlterField {operation.model_name}.{operation.name} to NOT NULL without db_default")

    for operation in migration.operations:
        check(operation)
    return found


def all_violations() -> dict[tuple[str, str], list[str]]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    own = own_app_labels()
    result = {}
    for key, migration in sorted(loader.disk_migrations.items()):
        if key[0] not in own:
            continue
        found = violations(migration, lambda key=key: loader.project_state(key, at_end=False))
        if found:
            result[key] = found
    return result


def test_migrations_only_expand_unless_listed_as_contracts():
    found = all_violations()
    unlisted = {key: ops for key, ops in found.items() if key not in CONTRACTS}
    assert not unlisted, (
        "These migrations drop, rename or tighten what the running release still reads; split them into "
        "expand now and contract in a later release (docs/operations.md, 'expand, then contract'), or list "
        "them in CONTRACTS with the release they contract after:\n"
        + "\n".join(f"  {app}.{name}: {'; '.join(ops)}" for (app, name), ops in unlisted.items()))
    stale = sorted(set(CONTRACTS) - set(found))
    assert not stale, f"CONTRACTS lists migrations that contract nothing (or no longer exist): {stale}"


def test_the_walk_covers_our_apps_and_not_third_party_ones():
    own = own_app_labels()
    assert {"tenants", "accounts", "crm", "trips", "integrations", "billing"} <= own
    assert not own & {"auth", "contenttypes", "sessions", "authtoken", "django_tenants"}
    loader = MigrationLoader(None, ignore_no_migrations=True)
    assert sum(1 for app, _ in loader.disk_migrations if app in own) >= 30


# --- the checker fails when it should --------------------------------------------------------------

def fake(*operations, app_label="crm") -> migrations.Migration:
    migration = migrations.Migration("9999_fake", app_label)
    migration.operations = list(operations)
    return migration


class _State:
    """A stand-in for the project state before the migration: crm.customer with a nullable ``nickname``."""

    def __init__(self):
        from django.db.migrations.state import ModelState

        self.models = {("crm", "customer"): ModelState("crm", "Customer", [
            ("id", models.BigAutoField(primary_key=True)),
            ("nickname", models.CharField(max_length=20, null=True)),
            ("name", models.CharField(max_length=20)),
        ])}


@pytest.mark.parametrize("operation, expected", [
    (migrations.RemoveField("customer", "nickname"), "RemoveField customer.nickname"),
    (migrations.RenameField("customer", "nickname", "alias"), "RenameField customer.nickname"),
    (migrations.DeleteModel("Customer"), "DeleteModel Customer"),
    (migrations.RenameModel("Customer", "Client"), "RenameModel Customer"),
    (migrations.AlterModelTable("customer", "crm_client"), "AlterModelTable customer"),
    (migrations.RunSQL("ALTER TABLE crm_customer DROP COLUMN nickname;", migrations.RunSQL.noop), "RunSQL with DROP COLUMN"),
    (migrations.RunSQL(["ALTER TABLE crm_customer RENAME COLUMN a TO b"]), "RunSQL with RENAME"),
    (migrations.RunSQL("DROP TABLE crm_old"), "RunSQL with DROP TABLE"),
    (migrations.AddField("customer", "tier", models.CharField(max_length=5, default="a")),
     "AddField customer.tier NOT NULL without db_default"),
    (migrations.AlterField("customer", "nickname", models.CharField(max_length=20, default="")),
     "AlterField customer.nickname to NOT NULL without db_default"),
    (migrations.SeparateDatabaseAndState(database_operations=[migrations.RemoveField("customer", "nickname")]),
     "RemoveField customer.nickname"),
])
def test_checker_flags_contracting_operations(operation, expected):
    assert violations(fake(operation), _State) == [expected]


@pytest.mark.parametrize("operation", [
    migrations.AddField("customer", "tier", models.CharField(max_length=5, null=True)),
    migrations.AddField("customer", "tier", models.CharField(max_length=5, db_default="a")),
    migrations.AddField("customer", "tags", models.ManyToManyField("crm.Customer")),
    migrations.AlterField("customer", "nickname", models.CharField(max_length=40, null=True)),
    migrations.AlterField("customer", "nickname", models.CharField(max_length=20, db_default="")),
    migrations.AlterField("customer", "name", models.CharField(max_length=40)),  # was NOT NULL already
    migrations.AddIndex("customer", models.Index(fields=["name"], name="crm_c_name")),
    migrations.RunSQL("CREATE INDEX x ON crm_customer (name)", "DROP INDEX x"),  # reverse SQL is not the rollout
    migrations.RunSQL("DROP TRIGGER IF EXISTS t ON crm_customer; CREATE TRIGGER t AFTER INSERT ON crm_customer "
                      "FOR EACH STATEMENT EXECUTE FUNCTION f()"),
    migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("customer", "nickname")]),
])
def test_checker_lets_expanding_operations_pass(operation):
    assert violations(fake(operation), _State) == []


def test_a_new_table_may_get_not_null_columns_in_its_own_migration():
    create = migrations.CreateModel("Visit", [("id", models.BigAutoField(primary_key=True))])
    add = migrations.AddField("visit", "customer", models.ForeignKey("crm.Customer", on_delete=models.CASCADE))
    assert violations(fake(create, add)) == []
    assert violations(fake(add)) == ["AddField visit.customer NOT NULL without db_default"]


def test_an_unlisted_contracting_migration_fails_the_rule(monkeypatch):
    """The rule test itself fails on a new migration that drops a column, naming it."""
    original = MigrationLoader.build_graph

    def build_graph(self):
        original(self)
        self.disk_migrations[("crm", "9999_drop_nickname")] = fake(migrations.RemoveField("customer", "nickname"))

    monkeypatch.setattr(MigrationLoader, "build_graph", build_graph)
    with pytest.raises(AssertionError, match=r"crm\.9999_drop_nickname: RemoveField customer\.nickname"):
        test_migrations_only_expand_unless_listed_as_contracts()
