"""Trip summaries kept by the database (``TripSummary``).

One plpgsql function per agency schema and statement-level triggers with transition tables on the
trips and items tables, so a bulk insert of 1,000 items recomputes each touched trip once. The
function names every table through ``TG_TABLE_SCHEMA``: it works on the schema whose rows changed,
whatever the session's search_path, and a schema cloned from the template (tenants/schemas.py) gets
its own copy of function and triggers pointing at itself (tests/test_trip_summary.py).

Concurrent writers to one trip: the function first locks the touched trips (``FOR NO KEY UPDATE``,
which does not block item inserts' foreign-key checks), so the second writer re-reads the items
after the first commits instead of overwriting its sums with a stale total.

Deleting a trip: its items' trigger may write the summary again before the trip row goes; the
trips' delete trigger then removes it, before the (deferred) foreign key is checked.
"""
import django.db.models.deletion
from django.db import migrations, models

# An item is a discounted fare when its details say so (docs/segments.md).
DISCOUNTED = "lower(details ->> 'discounted') IN ('true', '1', 'yes')"

FUNCTION = f"""
CREATE OR REPLACE FUNCTION trip_summary_refresh() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    key text := CASE TG_TABLE_NAME WHEN 'trips_trip' THEN 'id' ELSE 'trip_id' END;
    touched text := CASE TG_OP
        WHEN 'INSERT' THEN format('SELECT %1$I FROM new_rows', key)
        WHEN 'DELETE' THEN format('SELECT %1$I FROM old_rows', key)
        ELSE format('SELECT %1$I FROM new_rows UNION SELECT %1$I FROM old_rows', key) END;
BEGIN
    EXECUTE format('SELECT 1 FROM %1$I.trips_trip WHERE id IN (%2$s) ORDER BY id FOR NO KEY UPDATE',
                   TG_TABLE_SCHEMA, touched);
    EXECUTE format($sql$
        INSERT INTO %1$I.trips_tripsummary AS s (trip_id, customer_id, status, destination, depart_on, return_on,
                                                 confirmed_at, created_at, sell, cost, items, discounted_items)
        SELECT t.id, t.customer_id, t.status, t.destination, t.depart_on, t.return_on, t.confirmed_at, t.created_at,
               coalesce(i.sell, 0), coalesce(i.cost, 0), coalesce(i.items, 0), coalesce(i.discounted, 0)
        FROM %1$I.trips_trip t
        LEFT JOIN (SELECT trip_id, sum(sell) AS sell, sum(cost) AS cost, count(*) AS items,
                          count(*) FILTER (WHERE {DISCOUNTED}) AS discounted
                   FROM %1$I.trips_itineraryitem WHERE trip_id IN (%2$s) GROUP BY trip_id) i ON i.trip_id = t.id
        WHERE t.id IN (%2$s)
        ON CONFLICT (trip_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
            destination = EXCLUDED.destination, depart_on = EXCLUDED.depart_on, return_on = EXCLUDED.return_on,
            confirmed_at = EXCLUDED.confirmed_at, created_at = EXCLUDED.created_at,
            sell = EXCLUDED.sell, cost = EXCLUDED.cost, items = EXCLUDED.items,
            discounted_items = EXCLUDED.discounted_items
        $sql$, TG_TABLE_SCHEMA, touched);
    EXECUTE format($sql$
        DELETE FROM %1$I.trips_tripsummary s WHERE s.trip_id IN (%2$s)
          AND NOT EXISTS (SELECT 1 FROM %1$I.trips_trip t WHERE t.id = s.trip_id)
        $sql$, TG_TABLE_SCHEMA, touched);
    RETURN NULL;
END
$body$
"""


def _triggers(table: str) -> list[str]:
    run = "FOR EACH STATEMENT EXECUTE FUNCTION trip_summary_refresh()"
    return [
        f"CREATE TRIGGER trip_summary_insert AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows {run}",
        f"CREATE TRIGGER trip_summary_update AFTER UPDATE ON {table} "
        f"REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows {run}",
        f"CREATE TRIGGER trip_summary_delete AFTER DELETE ON {table} REFERENCING OLD TABLE AS old_rows {run}",
    ]


FORWARD = [
    FUNCTION,
    *_triggers("trips_trip"),
    *_triggers("trips_itineraryitem"),
    f"""INSERT INTO trips_tripsummary (trip_id, customer_id, status, destination, depart_on, return_on,
                                      confirmed_at, created_at, sell, cost, items, discounted_items)
        SELECT t.id, t.customer_id, t.status, t.destination, t.depart_on, t.return_on, t.confirmed_at, t.created_at,
               coalesce(i.sell, 0), coalesce(i.cost, 0), coalesce(i.items, 0), coalesce(i.discounted, 0)
        FROM trips_trip t
        LEFT JOIN (SELECT trip_id, sum(sell) AS sell, sum(cost) AS cost, count(*) AS items,
                          count(*) FILTER (WHERE {DISCOUNTED}) AS discounted
                   FROM trips_itineraryitem GROUP BY trip_id) i ON i.trip_id = t.id""",
]
BACKWARD = [
    *(f"DROP TRIGGER IF EXISTS trip_summary_{op} ON {table}"
      for table in ("trips_trip", "trips_itineraryitem") for op in ("insert", "update", "delete")),
    "DROP FUNCTION IF EXISTS trip_summary_refresh()",
]


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0004_employment_reports_to'),
        ('trips', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='TripSummary',
            fields=[
                ('trip', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='summary', serialize=False, to='trips.trip')),
                ('status', models.CharField(max_length=10)),
                ('destination', models.CharField(max_length=120)),
                ('depart_on', models.DateField(null=True)),
                ('return_on', models.DateField(null=True)),
                ('confirmed_at', models.DateTimeField(null=True)),
                ('created_at', models.DateTimeField()),
                ('sell', models.DecimalField(decimal_places=2, max_digits=14)),
                ('cost', models.DecimalField(decimal_places=2, max_digits=14)),
                ('items', models.PositiveIntegerField()),
                ('discounted_items', models.PositiveIntegerField(help_text='Items whose details say discounted: true/1/yes.')),
                ('customer', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='crm.customer')),
            ],
            options={
                'verbose_name': 'trip summary',
                'verbose_name_plural': 'trip summaries',
            },
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD),
    ]
