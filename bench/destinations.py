"""Destination knowledge base: how fast staff find an article, as the base grows.

    .venv/bin/python -m infra.devenv bench destinations

Makes (once) the agency ``bench-kb`` and fills its knowledge base to each size in turn (articles for real
cities of the airport reference data, bilingual titles, tags; search text made by the same
``crm.destinations.text.search_text`` the services use), then for each size measures:
1. ``selectors.search(query)`` in-process (the list page's and the API's search), over a mix of queries
   people type — Chinese (东京), pinyin (dongjing, dj), English (tokyo), a typo (tokio), a country (日本),
   an airport code (NRT) — p50/p95 per query, median of ``BENCH_RUNS`` runs with the range;
2. the same rows found by bare SQL (``search_text LIKE '%term%'`` over the same trigram index, no ranking, no
   ORM): the anchor, printed as a ratio;
3. ``selectors.article_for_place`` (the trip page's destination link) for free-text destinations.
Sizes: ``BENCH_SIZES`` (default 500,5000 articles).
"""
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "500,5000").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
SLUG = "bench-kb"
QUERIES = ["东京", "dongjing", "dj", "tokyo", "tokio", "日本", "NRT", "巴黎 family", "bangkok food"]
PLACES = ["日本 东京 · 京都", "Tokyo, Japan", "泰国 普吉岛", "Paris", "KIX", "Bali"]
TAGS = ["family", "food", "honeymoon", "ski", "beach", "culture", "shopping", "business"]


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from tenants.models import Agency
    from tenants.services import agency_onboard

    call_command("migrate_platform", verbosity=0)
    agency = Agency.objects.filter(slug=SLUG).first() or agency_onboard(
        name="Bench KB", slug=SLUG, plan="enterprise", admin_email=f"admin@{SLUG}.test", actor="bench")
    agency = getattr(agency, "agency", agency)  # agency_onboard returns Onboarded(agency, …)
    print(f"Destination search benchmark: {machine()}; in-process, one connection; sizes {SIZES} articles; "
          f"{RUNS} runs x {REPEAT} repeats per query; median of runs (range)")
    with tenant_context(agency):
        for size in SIZES:
            fill(size)
            measure(size)
    return 0


def fill(size: int) -> None:
    """The knowledge base holds ``size`` articles: cities of the reference data, a few tags each."""
    from crm.destinations import reference
    from crm.destinations.models import Article
    from crm.destinations.text import search_text

    have = Article.objects.count()
    if have > size:
        Article.objects.filter(pk__in=Article.objects.order_by("-id").values("pk")[:have - size]).delete()
        return
    rng = random.Random(size)
    cities = sorted(reference.cities().values(), key=lambda c: (c["name_zh"] == "", c["country"], c["city"]))
    rows = []
    for index in range(have, size):
        city = cities[index % len(cities)]
        round_ = index // len(cities)
        suffix = f" {round_ + 1}" if round_ else ""
        article = Article(kind=Article.Kind.CITY, country=city["country"], city=city["city"],
                          iata_codes=city["iata"][:3], title_en=f"{city['city']}{suffix}",
                          title_zh=(city["name_zh"] or city["city"]) + suffix, tags=rng.sample(TAGS, 2),
                          overview_en="Bench article.", overview_zh="基准文章。")
        article.search_text = search_text(article)
        rows.append(article)
    Article.objects.bulk_create(rows, batch_size=1000)


def timed(call, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(size: int) -> None:
    from django.db import connection

    from crm.destinations import selectors
    from crm.destinations.text import query_terms

    print(f"\n{size:,} articles")
    print(f"  {'query':14s} {'found':>5s}  {'p50 ms':>16s}  {'p95 ms':>16s}  {'bare SQL p50':>16s}  ratio")
    for query in QUERIES:
        found = len(list(selectors.search(query)))
        terms = query_terms(query)
        sql = ("SELECT id FROM destinations_article WHERE "
               + " AND ".join(["search_text LIKE %s"] * len(terms)) + " LIMIT 50")
        params = [f"%{t}%" for t in terms]

        def orm():
            list(selectors.search(query))

        def bare():
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                cursor.fetchall()

        p50s, p95s, bares = [], [], []
        for _ in range(RUNS):
            times = timed(orm, REPEAT)
            p50s.append(percentile(times, 0.5))
            p95s.append(percentile(times, 0.95))
            bares.append(percentile(timed(bare, REPEAT), 0.5))
        p50, p95, anchor = statistics.median(p50s), statistics.median(p95s), statistics.median(bares)
        print(f"  {query:14s} {found:5d}  {p50:6.2f} ({min(p50s):.2f}-{max(p50s):.2f})  "
              f"{p95:6.2f} ({min(p95s):.2f}-{max(p95s):.2f})  {anchor:6.2f} ({min(bares):.2f}-{max(bares):.2f})  "
              f"{p50 / anchor if anchor else 0:5.1f}x")
    runs = []
    for _ in range(RUNS):
        runs.append(statistics.median(timed(lambda: [selectors.article_for_place(p) for p in PLACES], REPEAT))
                    / len(PLACES))
    print(f"  article_for_place ({len(PLACES)} destinations): median {statistics.median(runs):.2f} ms per place "
          f"({min(runs):.2f}-{max(runs):.2f})")


if __name__ == "__main__":
    sys.exit(main())
