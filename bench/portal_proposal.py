"""Customer portal: the proposal page and the proposal PDF (issue 21).

    .venv/bin/python -m infra.devenv bench portal_proposal

Makes (once) the agency ``bench-proposal`` with, per size ``BENCH_SIZES`` (default 10,40 items), a customer
and a quote of that many items with a proposal sent. Page: against a real gunicorn (``BENCH_WORKERS`` sync
workers, default 2) on loopback, a browser signed in to the portal through a link GETs
``/portal/trips/<id>/proposal/`` ``BENCH_REPEAT`` times (default 50): p50/p95 (target p95 ≤ 150 ms); the
anchor is GET of the sign-in page. PDF: ``crm.proposals.pdf.proposal_pdf`` in this process,
``BENCH_PDF_REPEAT`` renders (default 5) after one warm-up (fonts loaded; its time printed as "first");
target ≤ 1.5 s at 10 items. Each figure is the median of ``BENCH_RUNS`` runs (default 5), with the range.
"""
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import app_server, percentile  # noqa: E402
from bench.portal_signin import Browser, machine  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "10,40").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "50"))
PDF_REPEAT = int(os.environ.get("BENCH_PDF_REPEAT", "5"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
SLUG = "bench-proposal"


def prepare(sizes: list[int]):
    """The agency and per size (customer, trip, proposal)."""
    from datetime import date, timedelta

    from django_tenants.utils import tenant_context

    from crm.customers.models import ChangeLog, Email
    from crm.customers.services import customer_create
    from crm.proposals import services as proposals
    from crm.proposals.models import Proposal
    from crm.trips import services as trips
    from tenants.models import Agency
    from tenants.services import agency_onboard

    agency = Agency.objects.filter(slug=SLUG).first() or agency_onboard(
        name="Bench Proposal 报价", slug=SLUG, plan="enterprise", admin_email=f"admin@{SLUG}.test", actor="bench").agency
    found = {}
    with tenant_context(agency):
        for size in sizes:
            email = f"size{size}@{SLUG}.test"
            row = Email.objects.filter(address=email).select_related("customer").first()
            customer = row.customer if row else customer_create(actor=None, via=ChangeLog.Via.SYSTEM,
                                                                name=f"王芳 {size}", emails=[email], language="zh-hans")
            proposal = Proposal.objects.filter(trip__customer=customer).select_related("trip").first()
            if proposal is None:
                depart = date.today() + timedelta(days=60)
                trip = trips.trip_create(actor=None, customer=customer, title=f"日本深度游 {size} 项",
                                         destination="日本 京都", depart_on=depart, return_on=depart + timedelta(days=12))
                for n in range(size):
                    trips.item_add(actor=None, trip=trip, kind=("hotel", "flight", "tour")[n % 3],
                                   description=f"第 {n + 1} 项：京都岚山温泉酒店 豪华和室 含早餐", starts_on=depart,
                                   ends_on=depart + timedelta(days=2), cost="900", sell="1234.50")
                snapshot = proposals.snapshot_of(trip, included="早餐\n接送机\n中文导游", excluded="签证费\n个人消费",
                                                 terms="取消条款：出发前 30 天以上取消，全额退还定金。\n" * 8)
                proposal = Proposal.objects.create(trip=trip, version=1, snapshot=snapshot,
                                                   content_hash=proposals.content_hash(snapshot))
            found[size] = (customer, proposal.trip, proposal)
    return agency, found


def signed_in(port: int, host: str, agency, customer) -> Browser:
    from django_tenants.utils import tenant_context

    from crm.portal import services
    from crm.portal.models import SignInLink

    with tenant_context(agency):
        token = services._make_link(customer, customer.emails.first().address, SignInLink.Purpose.REQUEST)[1]
    browser = Browser(port, host)
    _status, page, _ = browser.request("GET", f"/portal/link/{token}/")
    middleware_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    status, _, _ = browser.request("POST", f"/portal/link/{token}/", f"csrfmiddlewaretoken={middleware_token}")
    assert status == 302, status
    return browser


def pdf_times(agency, proposal) -> tuple[float, list[float]]:
    from django.utils import translation
    from django_tenants.utils import tenant_context

    from crm.proposals import pdf

    with tenant_context(agency), translation.override("zh-hans"):
        started = time.perf_counter()
        assert pdf.proposal_pdf(proposal).startswith(b"%PDF")
        first = (time.perf_counter() - started) * 1000
        times = []
        for _ in range(PDF_REPEAT):
            started = time.perf_counter()
            pdf.proposal_pdf(proposal)
            times.append((time.perf_counter() - started) * 1000)
    return first, times


def line(label: str, values: list[float]) -> str:
    return f"  {label:<40} {statistics.median(values):8.1f} ms  (range {min(values):.1f}–{max(values):.1f})"


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate_platform", verbosity=0)
    agency, found = prepare(SIZES)
    host = f"{SLUG}.{settings.PLATFORM_DOMAIN}"
    print(f"Portal proposal benchmark: {machine()}; gunicorn {WORKERS} sync workers on loopback; sizes {SIZES} items; "
          f"{RUNS} runs x {REPEAT} page GETs, x {PDF_REPEAT} PDF renders; median of runs (range)")
    with app_server(workers=WORKERS, probe_host=host) as server:
        for size in SIZES:
            customer, trip, proposal = found[size]
            runs = {"page p50": [], "page p95": [], "anchor p50": [], "pdf first": [], "pdf p50": [], "pdf max": []}
            for _run in range(RUNS):
                browser = signed_in(server.port, host, agency, customer)
                times = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    status, page, _ = browser.request("GET", f"/portal/trips/{trip.pk}/proposal/")
                    times.append((time.perf_counter() - started) * 1000)
                    assert status == 200 and page.count("第 ") >= size, status
                runs["page p50"].append(percentile(times, 50))
                runs["page p95"].append(percentile(times, 95))
                anchor = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    browser.request("GET", "/portal/sign-in/")
                    anchor.append((time.perf_counter() - started) * 1000)
                runs["anchor p50"].append(percentile(anchor, 50))
                first, renders = pdf_times(agency, proposal)
                runs["pdf first"].append(first)
                runs["pdf p50"].append(statistics.median(renders))
                runs["pdf max"].append(max(renders))
            print(f"\n{size} items:")
            print(line("proposal page p50", runs["page p50"]))
            print(line("proposal page p95 (target ≤ 150)", runs["page p95"]))
            print(line("anchor: GET /portal/sign-in/ p50", runs["anchor p50"]))
            print(line("proposal PDF, first render of a run", runs["pdf first"]))
            print(line("proposal PDF p50 (target ≤ 1500 at 10)", runs["pdf p50"]))
            print(line("proposal PDF max", runs["pdf max"]))
    print(f"\nmachine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
