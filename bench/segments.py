"""The segment builder's live count at two sizes, against hand-written SQL of the same counts (R-CAMP-1).

    DATABASE_URL=…/caravan_bench .venv/bin/python -m infra.devenv bench segments

Sizes: ``BENCH_SEGMENT_SIZES`` customers (default 10000,100000), each with twice as many trips and five
booking lines a trip (100,000 customers: 200,000 trips, 1,000,000 lines). The 100,000 size is the agency
``bench-crm`` of bench/customers.py with the trips of bench/tiers.py; another size is its own agency
``bench-crm-<n>`` made the same way (and placed in the service tiers once). Everything is made once (the time it took is printed) and reused.
Then, idempotently, with set-based SQL:
1. the bench trips get what segments filter on when they have none: a departure (their confirmation
   day plus 0–39 days), a return (2–9 days later) and a destination from a list; 30 % of the booking
   lines are marked as discounted fares (``details.discounted``); the trip summaries are vacuumed and
   analysed afterwards (as autovacuum would), so the planner has their figures;
2. customer value (RFM, segments, quadrants, P(alive)) is computed once if the agency has none
   (``crm.value.services.value_run``).
3. For representative definitions (profile, preferences, behaviour, festival, value, combined):
   ``segment_count(definition)`` — what the builder runs on every change, validation and queryset
   building included — and, as the anchor, a hand-written SQL statement giving the same count over the
   same tables (joins and one ``GROUP BY``, the same ``work_mem``), ``BENCH_SEGMENT_REPEAT`` times each
   per run, ``BENCH_RUNS`` runs (the two alternate which goes first). Printed per definition: both
   counts (they must be equal), the median over runs of each one's p50 with the range, and the ratio;
   then the p95 over all definitions, ours and the anchor's. Goal: ratio <= 1.2 and p95 <= 250 ms at
   100,000 customers.
"""
import inspect
import os
import statistics
import sys
import time
from datetime import date, timedelta

SIZES = [int(n) for n in os.environ.get("BENCH_SEGMENT_SIZES", "10000,100000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
REPEAT = int(os.environ.get("BENCH_SEGMENT_REPEAT", "10"))
TARGET_MS, TARGET_RATIO = 250, 1.2
DESTINATIONS = ["日本 东京", "日本 大阪 · 京都", "泰国 曼谷", "泰国 普吉岛", "新加坡", "马尔代夫", "法国 巴黎",
                "意大利 罗马", "澳大利亚 悉尼", "云南 丽江", "海南 三亚", "韩国 首尔", "美国 纽约", "瑞士 少女峰",
                "英国 伦敦", "土耳其 伊斯坦布尔"]


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate_platform", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"Segment count benchmark: {machine()}; PostgreSQL {version}; in-process, one connection; sizes "
          f"{', '.join(f'{n:,}' for n in SIZES)} customers; {RUNS} runs x {REPEAT} counts per definition; "
          f"median of runs (range)", flush=True)
    results = [measure_size(size) for size in SIZES]
    print(f"\nSummary ({machine()}):")
    for size, ours, anchor, worst in results:
        ratio = ours / anchor if anchor else 0
        verdict = "PASS" if size < 100000 or (ours <= TARGET_MS and worst <= TARGET_RATIO) else "MISS"
        print(f"  {size:>7,} customers: p95 over all definitions {ours:.0f} ms, hand-written SQL {anchor:.0f} ms, "
              f"ratio {ratio:.2f}; worst per-definition ratio {worst:.2f}  (goal at 100,000: p95 <= {TARGET_MS} ms, "
              f"ratio <= {TARGET_RATIO})  {verdict if size >= 100000 else ''}")
    return 0


def measure_size(size: int) -> tuple[int, float, float, float]:
    from django_tenants.utils import tenant_context

    agency, made = agency_of(size)
    with tenant_context(agency):
        bench = SegmentBench(agency)
        bench.data()
        bench.value()
        return (size, *bench.counts(size, made))


def agency_of(size: int):
    """The agency for this size, made with bench/customers.py and bench/tiers.py if missing (their module
    settings are pointed at this size while they run), and how long making it took (0 if reused)."""
    import bench.customers as customers
    import bench.tiers as tiers
    from django_tenants.utils import tenant_context
    from tenants.models import Agency

    from crm.tiers.models import CustomerTier
    from crm.tiers.services import assignment_run

    slug = customers.SLUG if size == 100000 else f"bench-crm-{size}"
    saved = customers.SLUG, customers.PEOPLE, tiers.TRIPS
    customers.SLUG, customers.PEOPLE, tiers.TRIPS = slug, size, 2 * size
    try:
        started = time.perf_counter()
        agency = Agency.objects.filter(slug=slug).first()
        base = customers.Bench()
        if agency is None:
            if "slug" in inspect.signature(base.prepare).parameters:
                base.prepare(slug=slug, people=size)
            else:
                base.prepare()
            agency = base.agency
        with tenant_context(agency):
            bench = tiers.TierBench(base)
            bench.data()
            bench.tiers(agency)  # the service tiers, once
            if not CustomerTier.objects.exists():  # everybody placed once, for the tier filter
                assignment_run()
        took = time.perf_counter() - started
    finally:
        customers.SLUG, customers.PEOPLE, tiers.TRIPS = saved
    return agency, took


class SegmentBench:
    def __init__(self, agency):
        self.agency = agency

    def data(self) -> None:
        from django.db import connection, transaction

        from bench.tiers import TITLE
        from crm.trips.models import ItineraryItem, Trip, TripSummary

        trip, item, summary = Trip._meta.db_table, ItineraryItem._meta.db_table, TripSummary._meta.db_table
        started = time.perf_counter()
        with connection.cursor() as cursor:
            with transaction.atomic():
                cursor.execute(f"""
                    UPDATE {trip} SET depart_on = d.day, return_on = d.day + (2 + id %% 8)::int,
                           destination = CASE WHEN destination = '' THEN (%s::text[])[1 + id %% %s] ELSE destination END
                    FROM (SELECT id AS trip_id,
                                 (coalesce(confirmed_at, created_at) AT TIME ZONE %s)::date + (id %% 40)::int AS day
                          FROM {trip} WHERE title = %s AND depart_on IS NULL) d
                    WHERE id = d.trip_id""", [DESTINATIONS, len(DESTINATIONS), self.agency.time_zone, TITLE])
                dated = cursor.rowcount
                cursor.execute(f"""
                    UPDATE {item} SET details = '{{"discounted": "true"}}'::jsonb
                    WHERE details = '{{}}'::jsonb AND id %% 10 < 3
                      AND trip_id IN (SELECT id FROM {trip} WHERE title = %s)""", [TITLE])
                marked = cursor.rowcount
            cursor.execute("SELECT last_analyze IS NULL AND last_autoanalyze IS NULL FROM pg_stat_user_tables "
                           "WHERE relid = %s::regclass", [summary])
            never_analysed = cursor.fetchone()[0]
            if dated or marked or never_analysed:
                # Index-only scans need the visibility map; the planner the new figures. The summary rows were
                # rewritten by the triggers on every write above: without this the planner guessed 260 of
                # 200,000 rows and sorted instead of hashing (as it would until autovacuum came by).
                for table in (trip, item, summary):
                    cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute(f"SELECT count(*) FROM {trip} WHERE title = %s AND depart_on IS NOT NULL", [TITLE])
            with_dates = cursor.fetchone()[0]
            cursor.execute(f"SELECT count(*) FROM {item} WHERE lower(details ->> 'discounted') IN ('true', '1', 'yes')")
            discounted = cursor.fetchone()[0]
        print(f"Segment benchmark data: {with_dates:,} bench trips with dates and destinations, {discounted:,} "
              f"discounted booking lines ({dated:,} trips dated and {marked:,} lines marked in "
              f"{time.perf_counter() - started:.1f} s)", flush=True)

    def value(self) -> None:
        from crm.value.models import CustomerValue
        from crm.value.services import value_run

        if not CustomerValue.objects.exists():
            started = time.perf_counter()
            result = value_run()
            print(f"Customer value computed in {time.perf_counter() - started:.1f} s — "
                  f"{ {k: v for k, v in result.items() if not isinstance(v, dict)} }", flush=True)

    def definitions(self) -> list[tuple[str, dict, str, dict]]:
        """(label, definition, the hand-written SQL of the same count, its parameters)."""
        from crm.customers.festivals import festival_break, festivals_between
        from crm.segments.query import count_matching
        from crm.tiers.models import ServiceTier
        from crm.trips.services import agency_today

        today = agency_today()
        # The bench trips depart in clusters: time the festival of the past year most of them overlap.
        key, day = max(festivals_between(today - timedelta(days=330), today - timedelta(days=30)),
                       key=lambda pair: count_matching({"festival": {"key": pair[0], "year": pair[1].year}}))
        first, last = festival_break(key, day.year)
        top = list(ServiceTier.objects.order_by("rank").values_list("pk", flat=True)[:2])
        p = {"zone": self.agency.time_zone, "year_ago": _months_before(today, 12),
             "half_year_ago": _months_before(today, 6), "tiers": top, "born_by": _years_before(today, 30),
             "born_after": _years_before(today, 46), "first": first, "last": last, "japan": "%日本%"}
        return [
            ("profile: Shanghai individuals", {"kind": "person", "city": ["上海"]}, f"""
                SELECT count(*) FROM crm_customer c WHERE c.merged_into_id IS NULL AND c.kind = 'person'
                AND EXISTS (SELECT FROM crm_address a WHERE a.customer_id = c.id AND lower(a.city) IN ('上海', '上海市'))
             """, p),
            ("profile: age 30–45, top two tiers", {"age": {"min": 30, "max": 45}, "tier": top}, """
                SELECT count(*) FROM crm_customer c JOIN tiers_customertier t ON t.customer_id = c.id
                WHERE c.merged_into_id IS NULL AND c.birthday <= %(born_by)s AND c.birthday > %(born_after)s
                  AND t.tier_id = ANY(%(tiers)s)""", p),
            ("preferences: business/first on CA or MU", {"cabin": ["business", "first"], "airline": ["CA", "MU"]}, """
                SELECT count(*) FROM crm_customer c JOIN crm_preferences pr ON pr.customer_id = c.id
                WHERE c.merged_into_id IS NULL AND pr.cabin IN ('business', 'first')
                  AND pr.airlines && ARRAY['CA', 'MU']::varchar[]""", p),
            ("behaviour: 2+ trips in 12 months", {"trips": {"min": 2, "from": "-12m"}}, f"""
                SELECT count(*) FROM crm_customer c JOIN (
                    SELECT customer_id FROM ({_TOOK_PART}) p WHERE day >= %(year_ago)s
                    GROUP BY customer_id HAVING count(*) >= 2) g ON g.customer_id = c.id
                WHERE c.merged_into_id IS NULL""", p),
            ("behaviour: Japan in 12 months", {"destination": {"any": ["日本"], "from": "-12m"}}, f"""
                SELECT count(*) FROM crm_customer c JOIN (
                    SELECT DISTINCT customer_id FROM ({_TOOK_PART}) p
                    WHERE day >= %(year_ago)s AND lower(destination) LIKE %(japan)s) g ON g.customer_id = c.id
                WHERE c.merged_into_id IS NULL""", p),
            ("behaviour: spend >= 20,000 in 12 months", {"spend": {"min": "20000", "from": "-12m"}}, f"""
                SELECT count(*) FROM crm_customer c JOIN (
                    SELECT s.customer_id FROM trips_tripsummary s WHERE {_LIVE} AND {_DAY} >= %(year_ago)s
                    GROUP BY s.customer_id HAVING sum(s.sell) >= 20000) g ON g.customer_id = c.id
                WHERE c.merged_into_id IS NULL""", p),
            ("behaviour: price-sensitive, 30 %+ discounted", {"price_sensitivity": ["high", "medium"],
                                                               "discount_share": {"min": 30}}, f"""
                SELECT count(*) FROM crm_customer c JOIN crm_preferences pr ON pr.customer_id = c.id JOIN (
                    SELECT s.customer_id FROM trips_tripsummary s WHERE {_LIVE} GROUP BY s.customer_id
                    HAVING sum(s.items) > 0 AND 100 * sum(s.discounted_items) >= 30 * sum(s.items)
                ) g ON g.customer_id = c.id
                WHERE c.merged_into_id IS NULL AND pr.price_sensitivity IN ('high', 'medium')""", p),
            (f"festival: {key} {day.year}", {"festival": {"key": key, "year": day.year}}, f"""
                SELECT count(*) FROM crm_customer c JOIN (
                    SELECT DISTINCT customer_id FROM ({_TOOK_PART}) p
                    WHERE depart_on <= %(last)s AND coalesce(return_on, depart_on) >= %(first)s
                ) g ON g.customer_id = c.id
                WHERE c.merged_into_id IS NULL""", p),
            ("value: most valuable/growth, R >= 4", {"value_segment": ["most_valuable", "growth"],
                                                     "rfm": {"r_min": 4}}, """
                SELECT count(*) FROM crm_customer c JOIN value_customervalue v ON v.customer_id = c.id
                WHERE c.merged_into_id IS NULL AND v.segment IN ('most_valuable', 'growth') AND v.r_score >= 4""", p),
            ("value: lapsing (last trip 6m+ ago, P(alive) <= 50 %)", {"last_trip": {"before": "-6m"},
                                                                     "p_alive": {"max": 50}}, f"""
                SELECT count(*) FROM crm_customer c JOIN value_customervalue v ON v.customer_id = c.id JOIN (
                    SELECT customer_id FROM ({_TOOK_PART}) p GROUP BY customer_id HAVING max(day) < %(half_year_ago)s
                ) g ON g.customer_id = c.id
                WHERE c.merged_into_id IS NULL AND v.p_alive <= 0.5""", p),
            ("combined: city, cabin, trips, spend, segment", {
                "city": ["上海", "北京"], "cabin": ["business", "first"], "trips": {"from": "-12m"},
                "spend": {"min": "10000", "from": "-12m"}, "value_segment": ["most_valuable", "growth"]}, f"""
                SELECT count(*) FROM crm_customer c JOIN crm_preferences pr ON pr.customer_id = c.id
                JOIN value_customervalue v ON v.customer_id = c.id JOIN (
                    SELECT customer_id FROM (
                        SELECT s.customer_id, {_DAY} AS day, s.sell FROM trips_tripsummary s WHERE {_LIVE}
                        UNION ALL
                        SELECT t.customer_id, {_DAY}, NULL FROM trips_traveler t
                        JOIN trips_tripsummary s ON s.trip_id = t.trip_id WHERE {_LIVE} AND t.customer_id <> s.customer_id
                    ) p WHERE day >= %(year_ago)s GROUP BY customer_id HAVING sum(sell) >= 10000
                ) g ON g.customer_id = c.id
                WHERE c.merged_into_id IS NULL AND pr.cabin IN ('business', 'first')
                  AND v.segment IN ('most_valuable', 'growth')
                  AND EXISTS (SELECT FROM crm_address a WHERE a.customer_id = c.id
                              AND lower(a.city) IN ('上海', '上海市', '北京', '北京市'))""", p),
        ]

    def counts(self, size: int, made: float) -> tuple[float, float, float]:
        """Print the table; return the p95 over all definitions (ours, anchor; medians of runs) and the
        worst per-definition ratio."""
        from crm.segments.selectors import segment_count

        definitions = self.definitions()
        print(f"\n{size:,} customers (agency {self.agency.slug}; data made or checked in {made:.1f} s; "
              f"{machine()}):", flush=True)
        ours = {label: [] for label, *_ in definitions}  # per run: the REPEAT timings
        bare = {label: [] for label, *_ in definitions}
        counted = {label: [0, 0] for label, *_ in definitions}  # ours, the anchor's
        for run in range(RUNS):
            for label, definition, sql, params in definitions:
                for side in ((0, 1) if run % 2 == 0 else (1, 0)):  # alternate which goes first
                    if side == 0:
                        counted[label][0] = segment_count(definition)  # the warm-up, and the figure shown
                        ours[label].append(_timed(lambda: segment_count(definition)))
                    else:
                        counted[label][1] = _anchor(sql, params)
                        bare[label].append(_timed(lambda: _anchor(sql, params)))
        print(f"  {'definition':52s} {'customers':>9s} {'hand SQL':>9s}  {'ours p50 ms':>16s}  "
              f"{'hand-written p50':>16s}  ratio  {'ours p95':>8s}")
        worst = 0.0
        for label, *_ in definitions:
            mine, theirs = [statistics.median(t) for t in ours[label]], [statistics.median(t) for t in bare[label]]
            p95 = statistics.median(_p95(t) for t in ours[label])
            ratio = statistics.median(mine) / statistics.median(theirs)
            worst = max(worst, ratio)
            a, b = counted[label]
            print(f"  {label:52s} {a:>9,} {b:>9,}{'' if a == b else ' ≠'}  {_spread(mine):>16s}  {_spread(theirs):>16s}  "
                  f"{ratio:5.2f}  {p95:8.0f}", flush=True)
        every_ours = [_p95([x for label in ours for x in ours[label][run]]) for run in range(RUNS)]
        every_bare = [_p95([x for label in bare for x in bare[label][run]]) for run in range(RUNS)]
        o, b = statistics.median(every_ours), statistics.median(every_bare)
        print(f"  {'p95 over all definitions':52s} {'':>9s} {'':>9s}  {_spread(every_ours):>16s}  "
              f"{_spread(every_bare):>16s}  {o / b:5.2f}", flush=True)
        return o, b, worst


_LIVE = "s.status IN ('confirmed', 'completed')"
_DAY = "coalesce(s.depart_on, (coalesce(s.confirmed_at, s.created_at) AT TIME ZONE %(zone)s)::date)"
# The rows a customer took part in: the trips they bought, and those they travel on that someone else bought.
_TOOK_PART = f"""
    SELECT s.customer_id, {_DAY} AS day, s.depart_on, s.return_on, s.destination FROM trips_tripsummary s WHERE {_LIVE}
    UNION ALL
    SELECT t.customer_id, {_DAY}, s.depart_on, s.return_on, s.destination FROM trips_traveler t
    JOIN trips_tripsummary s ON s.trip_id = t.trip_id WHERE {_LIVE} AND t.customer_id <> s.customer_id"""


def _anchor(sql: str, params: dict) -> int:
    """The hand-written count, with the same memory the builder's count gets, in one round trip (the
    ``SET LOCAL`` and the count in one Query message, run by PostgreSQL as one transaction)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '64MB'; {sql}", params)
        while cursor.description is None and cursor.nextset():
            pass
        return cursor.fetchone()[0]


def _timed(call) -> list[float]:
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.0f}–{max(values):.0f})"


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _months_before(day: date, months: int) -> date:
    month0 = day.month - 1 - months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main())
