"""Per-trip item totals kept by the database (``TripTotals``).

One plpgsql function per agency schema and three statement-level triggers on the items table, with
transition tables, so a bulk insert of 1,000 items recomputes each touched trip once. The function
names every table through ``TG_TABLE_SCHEMA``: it works on the schema whose items changed, whatever
the session's search_path, and a schema cloned from the template (tenants/schemas.py) gets its own
copy of function and triggers pointing at itself.

Concurrent writers to one trip: the function first locks the touched trips (``FOR NO KEY UPDATE``,
which does not block item inserts' foreign-key checks) so the second writer re-reads the items
after the first commits instead of overwriting its totals with a stale sum.
"""
import django.db.models.deletion
from django.db import migrations, models

# An item is a discounted fare when its details say so (docs/segments.md).
DISCOUNTED = "lower(details ->> 'discounted') IN ('true', '1', 'yes')"

FUNCTION = f"""
CREATE OR REPLACE FUNCTION trip_totals_refresh() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    touched text := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT trip_id FROM new_items'
        WHEN 'DELETE' THEN 'SELECT trip_id FROM old_items'
        ELSE 'SELECT trip_id FROM new_items UNION SELECT trip_id FROM old_items' END;
BEGIN
    EXECUTE format('SELECT 1 FROM %1$I.trips_trip WHERE id IN (%2$s) ORDER BY id FOR NO KEY UPDATE',
                   TG_TABLE_SCHEMA, touched);
    EXECUTE format($sql$
        INSERT INTO %1$I.trips_triptotals (trip_id, sell, cost, items, discounted_items)
        SELECT trip_id, sum(sell), sum(cost), count(*), count(*) FILTER (WHERE {DISCOUNTED})
        FROM %1$I.trips_itineraryitem WHERE trip_id IN (%2$s) GROUP BY trip_id
        ON CONFLICT (trip_id) DO UPDATE SET sell = EXCLUDED.sell, cost = EXCLUDED.cost,
            items = EXCLUDED.items, discounted_items = EXCLUDED.discounted_items
        $sql$, TG_TABLE_SCHEMA, touched);
    EXECUTE format($sql$
        DELETE FROM %1$I.trips_triptotals x WHERE x.trip_id IN (%2$s)
          AND NOT EXISTS (SELECT 1 FROM %1$I.trips_itineraryitem i WHERE i.trip_id = x.trip_id)
        $sql$, TG_TABLE_SCHEMA, touched);
    RETURN NULL;
END
$body$
"""

FORWARD = [
    FUNCTION,
    "CREATE TRIGGER trip_totals_insert AFTER INSERT ON trips_itineraryitem REFERENCING NEW TABLE AS new_items "
    "FOR EACH STATEMENT EXECUTE FUNCTION trip_totals_refresh()",
    "CREATE TRIGGER trip_totals_update AFTER UPDATE ON trips_itineraryitem "
    "REFERENCING OLD TABLE AS old_items NEW TABLE AS new_items FOR EACH STATEMENT EXECUTE FUNCTION trip_totals_refresh()",
    "CREATE TRIGGER trip_totals_delete AFTER DELETE ON trips_itineraryitem REFERENCING OLD TABLE AS old_items "
    "FOR EACH STATEMENT EXECUTE FUNCTION trip_totals_refresh()",
    f"""INSERT INTO trips_triptotals (trip_id, sell, cost, items, discounted_items)
        SELECT trip_id, sum(sell), sum(cost), count(*), count(*) FILTER (WHERE {DISCOUNTED})
        FROM trips_itineraryitem GROUP BY trip_id""",
]
BACKWARD = [
    "DROP TRIGGER IF EXISTS trip_totals_insert ON trips_itineraryitem",
    "DROP TRIGGER IF EXISTS trip_totals_update ON trips_itineraryitem",
    "DROP TRIGGER IF EXISTS trip_totals_delete ON trips_itineraryitem",
    "DROP FUNCTION IF EXISTS trip_totals_refresh()",
]


class Migration(migrations.Migration):

    dependencies = [
        ('trips', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='TripTotals',
            fields=[
                ('trip', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='totals', serialize=False, to='trips.trip')),
                ('sell', models.DecimalField(decimal_places=2, max_digits=14)),
                ('cost', models.DecimalField(decimal_places=2, max_digits=14)),
                ('items', models.PositiveIntegerField()),
                ('discounted_items', models.PositiveIntegerField(help_text='Items whose details say discounted: true/1/yes.')),
            ],
            options={
                'verbose_name': 'trip totals',
                'verbose_name_plural': 'trip totals',
            },
        ),
        migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD),
    ]
