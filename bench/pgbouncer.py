"""What the PgBouncer transaction-mode backend (caravan.db, DATABASE_POOLING=transaction) costs.

    DATABASE_URL=…/caravan_bench .venv/bin/python -m infra.devenv bench pgbouncer

Starts a real PgBouncer (pool_mode=transaction, tests/servers.py's starter, pool of 4) in front
of DATABASE_URL and measures, in agencies of SIZES customers (``bench-pool-<n>``, made and seeded
once):

1. one query per call: a customer by primary key through a Django cursor, with
   - a bare psycopg query (schema-qualified, client-side binding, autocommit): the anchor,
   - plain django-tenants (today's engine; it sets search_path once per connection and agency),
   - caravan.db, the same statement prefixed with ``SET LOCAL search_path``;
   - the bare query with caravan.db's ``SET LOCAL`` prefix (the prefix's own cost, no Django);
   each directly on PostgreSQL and through PgBouncer (plain django-tenants through PgBouncer is
   wrong, not slow: it is left out), and once more switching agency before every query (what a
   worker serving many agencies does: plain pays a SET round trip per switch, caravan.db does not);
2. the screen pop (``crm.customers.selectors.screen_pop``, one round trip) in-process: plain direct vs
   caravan.db direct vs caravan.db through PgBouncer.
Every figure is per call: the median of RUNS rounds of QUERIES calls, with the range of the rounds;
each round runs every variant in turn, so changes in machine load fall on all alike. Ratios divide
medians.
"""
import os
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "platform")]

SIZES = [int(n) for n in os.environ.get("BENCH_POOL_SIZES", "1000,10000").split(",")]
RUNS = int(os.environ.get("BENCH_POOL_RUNS", "21"))
QUERIES = int(os.environ.get("BENCH_POOL_QUERIES", "500"))
POPS = int(os.environ.get("BENCH_POOL_POPS", "100"))


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from tests.servers import pgbouncer_server

    call_command("migrate_platform", verbosity=0)
    agencies = [agency_with(size) for size in SIZES]
    load = os.getloadavg()
    print(f"PgBouncer transaction-mode backend: {os.cpu_count()} CPU cores, load {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; {RUNS} runs x {QUERIES} queries (screen pop: {POPS}); medians per call, range of runs",
          flush=True)
    try:
        bouncer_cm = pgbouncer_server(connection.settings_dict, pool_size=4)
        bouncer = bouncer_cm.__enter__()
    except BaseException as e:  # pytest.skip / pytest.fail outside pytest
        print(f"PgBouncer could not start ({e}); install it with `make pgbouncer`.")
        return 1
    try:
        for agency, size in zip(agencies, SIZES):
            measure(agency, size, bouncer, other=agencies[0] if agency is not agencies[0] else agencies[-1])
    finally:
        bouncer_cm.__exit__(None, None, None)
    return 0


def agency_with(size: int):
    from django_tenants.utils import tenant_context

    from crm.customers.demo import seed_customers
    from crm.customers.models import Customer
    from tenants.models import Agency
    from tenants.services import agency_onboard

    slug = f"bench-pool-{size}"
    agency = Agency.objects.filter(slug=slug).first() or agency_onboard(
        name=f"Bench pool {size}", slug=slug, plan="enterprise", admin_email=f"admin@{slug}.test", actor="bench").agency
    with tenant_context(agency):
        have = Customer.objects.filter(kind=Customer.Kind.PERSON).count()
    if have < size:
        print(f"seeding {size - have:,} customers into {slug}…", flush=True)
        seed_customers(agency, people=size - have, companies=max(1, (size - have) // 80), rng_seed=4242 + have)
    return agency


def wrapper(engine: str, settings_dict: dict):
    from django.db import connections
    from django.utils.module_loading import import_string

    cls = import_string(f"{engine}.base.DatabaseWrapper")
    settings_dict = {**settings_dict, "ENGINE": engine, "CONN_MAX_AGE": None,
                     "OPTIONS": dict(settings_dict.get("OPTIONS") or {})}
    return cls(settings_dict, alias=connections["default"].alias)


def interleaved(variants: dict, n: int) -> dict[str, list[float]]:
    """RUNS rounds (after a warm-up round); each round runs every variant's ``n`` calls in turn, so
    a change in machine load falls on all of them alike. Microseconds per call of each round."""
    from tests.servers import on_default

    out = {name: [] for name in variants}
    for i in range(RUNS + 1):
        for name, (w, call) in variants.items():
            with on_default(w):
                started = time.perf_counter()
                for k in range(n):
                    call(k)
                if i:
                    out[name].append((time.perf_counter() - started) / n * 1e6)
    return out


def shown(values: list[float], unit: str = "us") -> str:
    return f"{statistics.median(values):8.1f} {unit} (range {min(values):.1f}-{max(values):.1f})"


SERVER_LOOP = 20000


def server_side(settings_dict: dict, agency, ids: list[int]) -> dict[str, list[float]]:
    """The prefix's cost inside PostgreSQL alone (no client, no network): a PL/pgSQL loop setting the
    transaction's search_path (set_config(…, true), what SET LOCAL does) and reading a customer,
    minus the same loop without the set_config. Microseconds per statement, per run."""
    import psycopg

    path = f'"{agency.schema_name}", "public"'
    loop = """DO $$ DECLARE t0 timestamptz; t1 timestamptz; t2 timestamptz; i int; n text; BEGIN
        t0 := clock_timestamp();
        FOR i IN 1..{n} LOOP SELECT name INTO n FROM crm_customer WHERE id = {id}; END LOOP;
        t1 := clock_timestamp();
        FOR i IN 1..{n} LOOP PERFORM set_config('search_path', '{path}', true);
                             SELECT name INTO n FROM crm_customer WHERE id = {id}; END LOOP;
        t2 := clock_timestamp();
        RAISE NOTICE '% %', extract(epoch FROM t1 - t0), extract(epoch FROM t2 - t1); END $$"""
    out = {"set": [], "query": []}
    with psycopg.connect(host=settings_dict["HOST"] or None, port=settings_dict["PORT"] or None,
                         dbname=settings_dict["NAME"], user=settings_dict["USER"] or None,
                         password=settings_dict["PASSWORD"] or None) as conn:
        notices = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute(f"SET search_path = {path}")
        for i in range(RUNS + 1):
            conn.execute(loop.format(n=SERVER_LOOP, id=ids[0], path=path.replace("'", "''")))
            plain_s, with_set_s = map(float, notices[-1].split())
            if i:
                out["query"].append(plain_s / SERVER_LOOP * 1e6)
                out["set"].append((with_set_s - plain_s) / SERVER_LOOP * 1e6)
        conn.rollback()
    return out


def measure(agency, size: int, bouncer, other) -> None:
    import psycopg
    from django.db import connection
    from django_tenants.utils import tenant_context

    from crm.customers.models import Customer, Phone
    from crm.customers.selectors import screen_pop

    direct = dict(connection.settings_dict)
    pooled = bouncer.settings_dict(direct)
    with tenant_context(agency):
        ids = list(Customer.objects.values_list("pk", flat=True)[:QUERIES])
        numbers = list(Phone.objects.values_list("number", flat=True)[:POPS])
    connection.set_schema_to_public()
    sql = "SELECT id, name, kind FROM crm_customer WHERE id = %s"
    opened = []

    def bare(settings_dict, prefixed=False):
        conn = psycopg.connect(host=settings_dict["HOST"] or None, port=settings_dict["PORT"] or None,
                               dbname=settings_dict["NAME"], user=settings_dict["USER"] or None,
                               password=settings_dict["PASSWORD"] or None, autocommit=True,
                               cursor_factory=psycopg.ClientCursor)
        opened.append(conn)
        cursor, qualified = conn.cursor(), sql.replace("crm_customer", f'"{agency.schema_name}".crm_customer')
        if prefixed:  # what caravan.db sends, without Django: the SET LOCAL's own cost
            qualified = f'SET LOCAL search_path = "{agency.schema_name}", "public"; {sql}'
            return None, lambda k: (cursor.execute(qualified, [ids[k % len(ids)]]), cursor.nextset(), cursor.fetchone())
        return None, lambda k: (cursor.execute(qualified, [ids[k % len(ids)]]), cursor.fetchone())

    def django_query(engine, settings_dict, switching=False):
        w = wrapper(engine, settings_dict)
        opened.append(w)
        w.set_tenant(agency)

        def call(k):
            if switching:
                w.set_tenant(other if k % 2 else agency)
            with w.cursor() as cursor:
                cursor.execute(sql, [ids[k % len(ids)]])
                cursor.fetchone()

        return w, call

    plain, pooled_engine = "django_tenants.postgresql_backend", "caravan.db"
    results = interleaved({
        "bare psycopg, direct": bare(direct),
        "bare psycopg + SET LOCAL, direct": bare(direct, prefixed=True),
        "plain django-tenants, direct": django_query(plain, direct),
        "caravan.db, direct": django_query(pooled_engine, direct),
        "bare psycopg, PgBouncer": bare(pooled),
        "caravan.db, PgBouncer": django_query(pooled_engine, pooled),
        "plain, switching agency, direct": django_query(plain, direct, True),
        "caravan.db, switching agency, direct": django_query(pooled_engine, direct, True),
        "caravan.db, switching agency, PgBouncer": django_query(pooled_engine, pooled, True),
    }, QUERIES)

    def pops(engine, settings_dict):
        w = wrapper(engine, settings_dict)
        opened.append(w)
        w.set_tenant(agency)
        return w, lambda k: screen_pop(number=numbers[k % len(numbers)])

    pop = {name: [v / 1000 for v in values] for name, values in interleaved({
        "plain django-tenants, direct": pops(plain, direct),
        "caravan.db, direct": pops(pooled_engine, direct),
        "caravan.db, PgBouncer": pops(pooled_engine, pooled),
    }, len(numbers)).items()}
    for conn in opened:
        conn.close()

    m = {k: statistics.median(v) for k, v in results.items()}
    server = server_side(direct, agency, ids)

    def ratio(a: str, b: str, table=results) -> str:
        """The median of the rounds' own ratios (both measured in the same round), and its range."""
        per_round = [x / y for x, y in zip(table[a], table[b])]
        return (f"x{statistics.median(per_round):.2f} (range {min(per_round):.2f}-{max(per_round):.2f}; "
                f"{statistics.median(table[a]) - statistics.median(table[b]):+.1f} {'us' if table is results else 'ms'})")

    print(f"\n{agency.slug}: {size:,} customers; a customer by primary key, per query")
    for name, values in results.items():
        print(f"  {name:42s} {shown(values)}   x{m[name] / m['bare psycopg, direct']:.2f} of bare direct")
    print(f"  caravan.db / plain, direct:             {ratio('caravan.db, direct', 'plain django-tenants, direct')}")
    print(f"  bare + SET LOCAL / bare, direct:        {ratio('bare psycopg + SET LOCAL, direct', 'bare psycopg, direct')}")
    print(f"  caravan.db / bare, both via PgBouncer:  {ratio('caravan.db, PgBouncer', 'bare psycopg, PgBouncer')}")
    print(f"  bare via PgBouncer / bare direct:       {ratio('bare psycopg, PgBouncer', 'bare psycopg, direct')}")
    print(f"  SET LOCAL inside the server (PL/pgSQL loop, {SERVER_LOOP:,} statements, {RUNS} runs): "
          f"{shown(server['set'])} per statement, next to the lookup itself {shown(server['query'])}")
    print(f"  switching agency, caravan.db / plain:   "
          f"{ratio('caravan.db, switching agency, direct', 'plain, switching agency, direct')}")
    pm = {k: statistics.median(v) for k, v in pop.items()}
    print(f"  screen pop ({len(numbers)} numbers), crm.customers.selectors.screen_pop in-process:")
    for name, values in pop.items():
        print(f"  {name:42s} {shown(values, 'ms')}   x{pm[name] / pm['plain django-tenants, direct']:.2f} of plain")
    print(f"  screen pop, caravan.db via PgBouncer / plain direct: "
          f"{ratio('caravan.db, PgBouncer', 'plain django-tenants, direct', pop)}")


if __name__ == "__main__":
    sys.exit(main())
