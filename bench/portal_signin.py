"""Customer portal: from the sign-in link in the e-mail to the first page, over HTTP (issue 21).

    .venv/bin/python -m infra.devenv bench portal_signin

Makes (once) the agency ``bench-portal`` with two customers: one with few trips, one (a corporate account's
booker) who sees many, sizes ``BENCH_SIZES`` (default 2,40 trips of 4 items). Against a real gunicorn
(``BENCH_WORKERS`` sync workers, default 2) on loopback, each sample is what a customer's browser does after
tapping the link: GET the link page (the Continue button, and the CSRF cookie), POST it (spends the link,
starts the portal session, redirects), GET the home page listing their trips. Each sample uses a fresh link.
Reported per size: that whole path's p50/p95 and its three requests' p50, median of ``BENCH_RUNS`` runs
(default 5) of ``BENCH_REPEAT`` samples (default 30), with the range; next to it, the anchor: GET of the
sign-in page (no database work for a customer), and the ratio.
"""
import http.client
import os
import re
import statistics
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._server import app_server, percentile  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "2,40").split(",")]
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
SLUG = "bench-portal"


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


class Browser:
    """One keep-alive connection with a cookie jar: just enough of a browser for the sign-in path."""

    def __init__(self, port: int, host: str):
        self.port, self.host, self.cookies = port, host, {}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)

    def request(self, method: str, path: str, body: str = "") -> tuple[int, str, dict]:
        headers = {"Host": self.host, "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body:
            headers.update({"Content-Type": "application/x-www-form-urlencoded", "Referer": f"http://{self.host}{path}"})
        self.conn.request(method, path, body=body or None, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode()
        for header in response.msg.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, text, dict(response.getheaders())


def prepare(sizes: list[int]):
    """The agency, and per size a customer who sees that many trips. Returns {size: customer id}."""
    from datetime import date, timedelta

    from django_tenants.utils import tenant_context

    from crm.customers.models import ChangeLog, Customer, Email
    from crm.customers.services import customer_create, employment_set
    from crm.trips import services as trips
    from tenants.models import Agency
    from tenants.services import agency_onboard

    agency = Agency.objects.filter(slug=SLUG).first() or agency_onboard(
        name="Bench Portal 门户", slug=SLUG, plan="enterprise", admin_email=f"admin@{SLUG}.test", actor="bench").agency
    people = {}
    with tenant_context(agency):
        for size in sizes:
            email = f"size{size}@{SLUG}.test"
            row = Email.objects.filter(address=email).select_related("customer").first()
            if row is not None:
                people[size] = row.customer
                continue
            company = customer_create(actor=None, via=ChangeLog.Via.SYSTEM, name=f"客户公司 {size}",
                                      kind=Customer.Kind.COMPANY)
            booker = customer_create(actor=None, via=ChangeLog.Via.SYSTEM, name=f"订票员 {size}", emails=[email])
            employment_set(actor=None, company=company, person=booker, is_booker=True, is_traveler=False)
            for n in range(size):
                depart = date.today() + timedelta(days=10 + n)
                trip = trips.trip_create(actor=None, customer=company, title=f"出差 {n + 1} 上海—东京",
                                         destination="日本 东京", depart_on=depart, return_on=depart + timedelta(days=3))
                for k in range(4):
                    trips.item_add(actor=None, trip=trip, kind="hotel", description=f"东京酒店 {k + 1}",
                                   starts_on=depart, ends_on=depart + timedelta(days=3), cost="900", sell="1200")
                trips.trip_confirm(actor=None, trip=trip)
            people[size] = booker
    return agency, people


def fresh_tokens(agency, customer, count: int) -> list[str]:
    from django_tenants.utils import tenant_context

    from crm.portal import services
    from crm.portal.models import SignInLink

    with tenant_context(agency):
        email = customer.emails.first().address
        return [services._make_link(customer, email, SignInLink.Purpose.REQUEST)[1] for _ in range(count)]


def sign_in_once(port: int, host: str, token: str) -> tuple[float, float, float, int]:
    browser = Browser(port, host)
    started = time.perf_counter()
    status, page, _ = browser.request("GET", f"/portal/link/{token}/")
    assert status == 200, status
    middleware_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
    shown = time.perf_counter()
    status, _, headers = browser.request("POST", f"/portal/link/{token}/", f"csrfmiddlewaretoken={middleware_token}")
    assert status == 302 and headers["Location"] == "/portal/", (status, headers.get("Location"))
    spent = time.perf_counter()
    status, home, _ = browser.request("GET", "/portal/")
    assert status == 200, status
    done = time.perf_counter()
    browser.conn.close()
    return (shown - started) * 1000, (spent - shown) * 1000, (done - spent) * 1000, home.count('class="portal-trip"')


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate_platform", verbosity=0)
    agency, people = prepare(SIZES)
    host = f"{SLUG}.{settings.PLATFORM_DOMAIN}"
    print(f"Portal sign-in benchmark: {machine()}; gunicorn {WORKERS} sync workers on loopback; sizes {SIZES} trips "
          f"seen by the customer (4 items each); {RUNS} runs x {REPEAT} sign-ins; median of runs (range)")
    with app_server(workers=WORKERS, probe_host=host) as server:
        for size in SIZES:
            runs = {"total p50": [], "total p95": [], "link page p50": [], "continue p50": [], "home p50": [],
                    "anchor p50": []}
            for _run in range(RUNS):
                tokens = fresh_tokens(agency, people[size], REPEAT)
                samples = [sign_in_once(server.port, host, token) for token in tokens]
                assert all(s[3] == size for s in samples), "the home page did not list every trip"
                totals = [a + b + c for a, b, c, _n in samples]
                runs["total p50"].append(percentile(totals, 50))
                runs["total p95"].append(percentile(totals, 95))
                for index, name in enumerate(("link page p50", "continue p50", "home p50")):
                    runs[name].append(percentile([s[index] for s in samples], 50))
                anchor = Browser(server.port, host)
                times = []
                for _ in range(REPEAT):
                    started = time.perf_counter()
                    anchor.request("GET", "/portal/sign-in/")
                    times.append((time.perf_counter() - started) * 1000)
                runs["anchor p50"].append(percentile(times, 50))
            print(f"\n{size} trips seen:")
            for name, values in runs.items():
                label = "anchor: GET /portal/sign-in/ p50" if name == "anchor p50" else f"link → first page, {name}"
                print(f"  {label:<44} {statistics.median(values):7.1f} ms  (range {min(values):.1f}–{max(values):.1f})")
            ratio = statistics.median(runs["total p50"]) / statistics.median(runs["anchor p50"])
            print(f"  {'ratio: whole path p50 / anchor p50':<44} {ratio:7.1f}x")
    print(f"\nmachine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
