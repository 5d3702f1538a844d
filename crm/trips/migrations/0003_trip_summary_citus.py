"""The TripSummary trigger function, rewritten so it also runs on Citus (docs/operations.md, "Past one
database").

On a Citus worker the trigger fires on a shard, whose name carries the shard id
(``trips_trip_102008``), and Citus cannot plan a query that reads a trigger's transition table
together with distributed tables (``unrecognized RTE kind: 7``). So the table is recognised by its
name with an optional shard suffix, and the touched trip ids are first collected from the
transition table alone into an array, then used with ``= ANY($1)``. Same behaviour on plain
PostgreSQL (tests/test_trip_summary.py; tests/test_citus_rules.py runs it on a table with a shard
name).
"""
from django.db import migrations

# An item is a discounted fare when its details say so (docs/segments.md; as in 0002).
DISCOUNTED = "lower(details ->> 'discounted') IN ('true', '1', 'yes')"

FUNCTION = f"""
CREATE OR REPLACE FUNCTION trip_summary_refresh() RETURNS trigger LANGUAGE plpgsql AS $body$
DECLARE
    is_trip boolean := TG_TABLE_NAME ~ '^trips_trip(_[0-9]+)?$';
    ids bigint[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF is_trip THEN SELECT array_agg(DISTINCT id) INTO ids FROM new_rows;
        ELSE SELECT array_agg(DISTINCT trip_id) INTO ids FROM new_rows; END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF is_trip THEN SELECT array_agg(DISTINCT id) INTO ids FROM old_rows;
        ELSE SELECT array_agg(DISTINCT trip_id) INTO ids FROM old_rows; END IF;
    ELSE
        IF is_trip THEN SELECT array_agg(DISTINCT id) INTO ids FROM (SELECT id FROM new_rows UNION SELECT id FROM old_rows) r;
        ELSE SELECT array_agg(DISTINCT trip_id) INTO ids
             FROM (SELECT trip_id FROM new_rows UNION SELECT trip_id FROM old_rows) r; END IF;
    END IF;
    IF ids IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT 1 FROM %1$I.trips_trip WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE',
                   TG_TABLE_SCHEMA) USING ids;
    EXECUTE format($sql$
        INSERT INTO %1$I.trips_tripsummary AS s (trip_id, customer_id, status, destination, depart_on, return_on,
                                                 confirmed_at, created_at, sell, cost, items, discounted_items)
        SELECT t.id, t.customer_id, t.status, t.destination, t.depart_on, t.return_on, t.confirmed_at, t.created_at,
               coalesce(i.sell, 0), coalesce(i.cost, 0), coalesce(i.items, 0), coalesce(i.discounted, 0)
        FROM %1$I.trips_trip t
        LEFT JOIN (SELECT trip_id, sum(sell) AS sell, sum(cost) AS cost, count(*) AS items,
                          count(*) FILTER (WHERE {DISCOUNTED}) AS discounted
                   FROM %1$I.trips_itineraryitem WHERE trip_id = ANY($1) GROUP BY trip_id) i ON i.trip_id = t.id
        WHERE t.id = ANY($1)
        ON CONFLICT (trip_id) DO UPDATE SET customer_id = EXCLUDED.customer_id, status = EXCLUDED.status,
            destination = EXCLUDED.destination, depart_on = EXCLUDED.depart_on, return_on = EXCLUDED.return_on,
            confirmed_at = EXCLUDED.confirmed_at, created_at = EXCLUDED.created_at,
            sell = EXCLUDED.sell, cost = EXCLUDED.cost, items = EXCLUDED.items,
            discounted_items = EXCLUDED.discounted_items
        $sql$, TG_TABLE_SCHEMA) USING ids;
    EXECUTE format($sql$
        DELETE FROM %1$I.trips_tripsummary s WHERE s.trip_id = ANY($1)
          AND NOT EXISTS (SELECT 1 FROM %1$I.trips_trip t WHERE t.id = s.trip_id)
        $sql$, TG_TABLE_SCHEMA) USING ids;
    RETURN NULL;
END
$body$
"""


def _previous_function() -> str:
    import importlib

    return importlib.import_module("crm.trips.migrations.0002_trip_summary").FUNCTION


class Migration(migrations.Migration):

    dependencies = [("trips", "0002_trip_summary")]

    operations = [migrations.RunSQL(sql=FUNCTION, reverse_sql=_previous_function())]
