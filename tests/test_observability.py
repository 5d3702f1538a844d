"""Health probes, Prometheus metrics and structured logs (caravan.health, caravan.metrics, caravan.logs).

- /healthz and /readyz answer on the platform domain, agency hosts, unknown hosts and bare IPs;
  /readyz says 503 when Redis (cache and broker) is unreachable or migrations are missing;
- /metrics needs the bearer token (a session or an agency's API token is not it), labels requests
  by URL pattern (no ids, no phone numbers), and never shows customer data;
- the agency label keeps at most METRICS_TOP_AGENCIES slugs over all processes, the rest ``other``;
- JSON log lines carry request id, agency and user id, never the user's e-mail;
- Celery task outcomes are counted and the worker serves them on its own port.
"""
import json
import logging
import socket
import urllib.request
import uuid

import psycopg
import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from caravan import health, metrics
from caravan.celery import app as celery_app
from caravan.logs import ContextFilter, JsonFormatter
from crm.customers import services as crm_services

from .conftest import staff
from .test_sentry import sentry_events  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"
HOSTS = ["localhost", "alpha.localhost", "nobody.localhost", "10.1.2.3:8000", "203.0.113.9"]


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN
    return settings


def scrape(host="localhost", token=TOKEN):
    client = Client(HTTP_HOST=host)
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")


def families(body: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(body)}


# --- /healthz and /readyz ---------------------------------------------------------------------------

@pytest.mark.parametrize("hostname", HOSTS)
def test_healthz_answers_on_any_host(hostname):
    response = Client(HTTP_HOST=hostname).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize("hostname", HOSTS)
def test_readyz_checks_database_cache_broker_and_migrations_on_any_host(hostname):
    health.reset_migrations_check()
    response = Client(HTTP_HOST=hostname).get("/readyz/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "broker", "migrations"}
    assert all(check["status"] == "ok" for check in body["checks"].values())


def test_probes_refuse_writes():
    assert Client(HTTP_HOST="localhost").post("/readyz").status_code == 405


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_readyz_is_503_when_redis_is_unreachable(settings):
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CELERY_BROKER_URL = dead
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": dead}}
    response = Client(HTTP_HOST="203.0.113.9").get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["broker"]["status"] == "error" and checks["cache"]["status"] == "error"
    assert checks["database"]["status"] == "ok"
    assert "127.0.0.1" not in response.content.decode()  # no addresses handed to whoever probes


def test_readyz_is_503_when_the_template_misses_a_migration():
    """A migration on disk but not applied in agency_template (committed: the check reads on its own
    connection), then put back."""
    dsn = {k: v for k, v in {"dbname": connection.settings_dict["NAME"], "host": connection.settings_dict["HOST"],
                             "port": connection.settings_dict["PORT"] or None,
                             "user": connection.settings_dict["USER"],
                             "password": connection.settings_dict["PASSWORD"] or None}.items() if v}
    with psycopg.connect(**dsn, autocommit=True) as db:
        row = db.execute("DELETE FROM agency_template.django_migrations WHERE id = "
                         "(SELECT max(id) FROM agency_template.django_migrations WHERE app = 'crm') "
                         "RETURNING id, app, name, applied").fetchone()
        try:
            health.reset_migrations_check()
            response = Client(HTTP_HOST="localhost").get("/readyz")
            assert response.status_code == 503
            migrations = response.json()["checks"]["migrations"]
            assert migrations["status"] == "error"
            assert migrations["error"].endswith("Unapplied migrations in agency_template")
        finally:
            # The same id: the template's onboarding snapshot is current only for the same migration rows.
            db.execute("INSERT INTO agency_template.django_migrations (id, app, name, applied) "
                       "VALUES (%s, %s, %s, %s)", row)
            health.reset_migrations_check()
    assert Client(HTTP_HOST="localhost").get("/readyz").status_code == 200


def test_migrations_answer_is_kept_for_a_while():
    health.reset_migrations_check()
    health.MigrationsApplied().run()
    kept = health.MigrationsApplied._cached
    health.MigrationsApplied().run()
    assert health.MigrationsApplied._cached is kept


# --- /metrics: the fence ------------------------------------------------------------------------------

def test_metrics_are_off_without_a_token(settings):
    settings.METRICS_TOKEN = ""
    assert scrape(token="").status_code == 404
    assert scrape(token="anything").status_code == 404


@pytest.mark.parametrize("hostname", ["localhost", "alpha.localhost", "10.1.2.3:9100"])
def test_metrics_need_the_right_token(metrics_on, hostname):
    client = Client(HTTP_HOST=hostname)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}x").status_code == 401
    response = scrape(hostname)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


def test_an_agency_admins_session_or_token_does_not_open_metrics(metrics_on, page_client, api_client,
                                                                 operator_client):
    admin = page_client("alpha", "admin")
    assert admin.get("/").status_code == 200  # signed in for real
    assert admin.get("/metrics").status_code == 401
    assert api_client("alpha", "admin").get("/metrics").status_code == 401
    assert operator_client.get("/metrics").status_code == 401


# --- /metrics: what it says ---------------------------------------------------------------------------

def _customer(agency, name, phone, email):
    with tenant_context(agency):
        return crm_services.customer_create(actor=None, via="api", name=name, phones=[phone], emails=[email])


def test_requests_are_counted_by_route_never_by_path_or_customer(metrics_on, page_client, alpha, bravo):
    mine = _customer(alpha, "Zhang Metricsperson", "+86 139 1234 5678", "zhang.metrics@example.com")
    _customer(bravo, "Bravo Othercustomer", "+86 137 1111 2222", "bravo.other@example.com")
    theirs = _customer(bravo, "Bravo Secretcustomer", "+86 138 8765 4321", "bravo.secret@example.com")
    assert theirs.pk != mine.pk
    alpha_sales, bravo_admin = page_client("alpha", "sales"), page_client("bravo", "admin")
    assert alpha_sales.get(f"/customers/{mine.pk}/").status_code == 200
    assert alpha_sales.get("/screen-pop/+8613912345678/").status_code in (200, 302)
    assert alpha_sales.get(f"/customers/{theirs.pk}/").status_code == 404  # bravo's id on alpha's host
    assert bravo_admin.get(f"/customers/{theirs.pk}/").status_code == 200
    assert Client(HTTP_HOST="alpha.localhost").get("/no/such/page/12345/").status_code == 404

    body = scrape("alpha.localhost").content.decode()
    found = families(body)
    requests = found["caravan_http_requests"].samples
    routes = {s.labels["route"] for s in requests}
    assert {"customer_detail", "screen_pop", "unmatched"} <= routes
    detail = [s for s in requests if s.name == "caravan_http_requests_total" and s.labels["route"] == "customer_detail"]
    assert {s.labels["status"] for s in detail} >= {"2xx", "4xx"} and all(s.labels["method"] == "GET" for s in detail)
    assert any(s.labels["route"] == "customer_detail"
               for s in found["caravan_http_request_duration_seconds"].samples)
    agencies = {s.labels["agency"] for s in found["caravan_agency_requests"].samples}
    assert agencies & {"alpha", "other"} and agencies & {"bravo", "other"}
    # No label anywhere holds a path, an id or a phone number; no customer data in the body at all.
    for family in found.values():
        if not family.name.startswith("caravan_"):
            continue
        for sample in family.samples:
            for value in sample.labels.values():
                assert not value.startswith("/") and "12345" not in value and value not in (str(mine.pk), str(theirs.pk))
    for secret in ("Metricsperson", "Secretcustomer", "zhang.metrics", "bravo.secret", "1234 5678",
                   "13912345678", "8765 4321", f"/customers/{mine.pk}/", f"/customers/{theirs.pk}/"):
        assert secret not in body


def test_queue_depth_and_database_connections_are_read_at_scrape_time(metrics_on):
    from redis import Redis

    queue = celery_app.conf.task_default_queue
    broker = Redis.from_url(celery_app.conf.broker_url)
    before = broker.llen(queue)
    broker.rpush(queue, b"{}", b"{}")  # two messages nobody consumes in this test
    try:
        found = families(scrape().content.decode())
    finally:
        broker.lrem(queue, 2, b"{}")
    lengths = {s.labels["queue"]: s.value for s in found["caravan_celery_queue_length"].samples}
    assert lengths[queue] == before + 2
    states = {s.labels["state"]: s.value for s in found["caravan_db_connections"].samples}
    assert states.get("active", 0) >= 1  # the scrape's own query
    assert found["caravan_db_max_connections"].samples[0].value > 0


def test_the_agency_label_set_never_exceeds_the_limit():
    """N+5 agencies' requests, spread over two processes sharing the slot table: at most N+1 labels."""
    limit = 4
    key = f"test:metrics:agency-labels:{uuid.uuid4().hex}"
    first, second = metrics.AgencyLabels(limit, key), metrics.AgencyLabels(limit, key)
    slugs = [f"agency-{i}" for i in range(limit + 5)]
    seen = set()
    try:
        for round_ in range(3):
            for i, slug in enumerate(slugs):
                process = first if (i + round_) % 2 else second
                seen.add(process.label(slug))
        assert len(seen) <= limit + 1 and "other" in seen
        assert {first.label(s) for s in slugs} == {second.label(s) for s in slugs} == seen
        assert all(first.label(s) == second.label(s) for s in slugs)  # one agency, one label everywhere
    finally:
        first.client().delete(key)
    assert metrics.AgencyLabels(0, key).label("anyone") == "other"


# --- Logs ------------------------------------------------------------------------------------------------

class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.addFilter(ContextFilter())
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines():
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.lines
    root.removeHandler(handler)


def test_json_log_lines_carry_request_id_agency_and_user_id_not_the_email(page_client, alpha, log_lines):
    user = staff(alpha, "sales")
    client = page_client("alpha", "sales")
    response = client.get("/customers/", HTTP_X_REQUEST_ID="req-0042.abc")
    assert response.status_code == 200 and response["X-Request-ID"] == "req-0042.abc"
    access = [json.loads(line) for line in log_lines if '"logger": "caravan.request"' in line]
    assert access, log_lines
    line = access[-1]
    assert line["request_id"] == "req-0042.abc" and line["agency"] == "alpha" and line["schema"] == "alpha"
    assert line["user_id"] == user.pk and line["route"] == "customer_list" and line["status"] == 200
    assert {"timestamp", "level", "logger", "message"} <= set(line)
    assert all(user.email not in text and user.full_name not in text for text in log_lines)


def test_a_request_id_that_is_not_an_id_is_replaced(page_client):
    response = page_client("alpha").get("/accounts/login/", HTTP_X_REQUEST_ID="someone@example.com <script>")
    assert response["X-Request-ID"] != "someone@example.com <script>"
    assert len(response["X-Request-ID"]) == 32
    assert page_client("alpha").get("/accounts/login/")["X-Request-ID"]  # one is made when none is sent


def test_personal_data_is_scrubbed_from_log_messages(alpha, log_lines):
    with tenant_context(alpha):
        logging.getLogger("caravan.test").warning("Mail to %s at %s failed", "li.na@example.com", "+86 139 0000 1111")
    line = json.loads(log_lines[-1])
    assert "li.na@example.com" not in line["message"] and "139 0000 1111" not in line["message"]
    assert line["agency"] == "alpha" and line["level"] == "WARNING"


def test_the_text_format_keeps_the_schema(alpha):
    record = logging.LogRecord("caravan", logging.INFO, __file__, 1, "hello", None, None)
    with tenant_context(alpha):
        ContextFilter().filter(record)
    text = logging.Formatter("%(asctime)s %(levelname)s [%(schema_name)s] %(name)s: %(message)s").format(record)
    assert "[alpha] caravan: hello" in text


# --- Celery --------------------------------------------------------------------------------------------

@celery_app.task(name="tests.observe_ok")
def observe_ok():
    logging.getLogger("tests.observe").info("working")
    return 1


@celery_app.task(name="tests.observe_fails")
def observe_fails():
    raise RuntimeError("deliberate")


def _tasks(name, outcome):
    return REGISTRY.get_sample_value("caravan_celery_tasks_total", {"task": name, "outcome": outcome}) or 0


def test_task_outcomes_are_counted_with_the_task_in_the_log_context(log_lines):
    ok, failed = _tasks("tests.observe_ok", "succeeded"), _tasks("tests.observe_fails", "failed")
    result = observe_ok.apply()  # the worker's trace path: prerun, success, postrun signals
    observe_fails.apply()
    assert _tasks("tests.observe_ok", "succeeded") == ok + 1
    assert _tasks("tests.observe_fails", "failed") == failed + 1
    assert REGISTRY.get_sample_value("caravan_celery_task_duration_seconds_count", {"task": "tests.observe_ok"}) >= 1
    working = [json.loads(line) for line in log_lines if '"message": "working"' in line][-1]
    assert working["task_name"] == "tests.observe_ok" and working["task_id"] == result.id
    from celery.signals import task_retry

    retried = _tasks("tests.observe_ok", "retried")
    task_retry.send(sender=observe_ok, request=None, reason="test")
    assert _tasks("tests.observe_ok", "retried") == retried + 1


def test_the_worker_serves_its_task_metrics_on_its_port(settings):
    port = _closed_port()
    settings.WORKER_METRICS_PORT = port
    observe_ok.apply()
    server = metrics._serve_worker_metrics(sender=None)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    assert 'caravan_celery_tasks_total{outcome="succeeded",task="tests.observe_ok"}' in body


# --- Several gunicorn workers -----------------------------------------------------------------------------

def _scrape_http(port: int, host: str) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Host": host, "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read().decode()
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(body) if family.name == "caravan_http_requests"
            for s in family.samples if s.name == "caravan_http_requests_total"}


def test_gunicorn_workers_add_up_in_multiprocess_mode(tmp_path):
    """Two gunicorn workers with PROMETHEUS_MULTIPROC_DIR: whichever worker answers the scrape, it
    counts every worker's requests."""
    from .servers import free_port, gunicorn_server, http_status

    directory = tmp_path / "prometheus"
    directory.mkdir()
    port = free_port()
    home = (("method", "GET"), ("route", "home"), ("status", "3xx"))  # signed out: to the sign-in page
    with gunicorn_server(port=port, log_dir=tmp_path, PROMETHEUS_MULTIPROC_DIR=str(directory), METRICS_TOKEN=TOKEN):
        before = _scrape_http(port, "10.0.0.1").get(home, 0)
        for _ in range(12):
            assert http_status(f"http://127.0.0.1:{port}/", f"alpha.localhost:{port}") == 302
        scrapes = [_scrape_http(port, host).get(home) for host in ("10.0.0.1", "localhost", "alpha.localhost") * 2]
    assert scrapes == [before + 12] * 6
    assert len(list(directory.glob("counter_*.db"))) >= 1


def test_the_grafana_dashboard_reads_only_metrics_we_export(metrics_on):
    import re
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[1] / "infra" / "grafana" / "caravan.json").read_text())
    assert "datasource" in {v["name"] for v in dashboard["templating"]["list"] if v["type"] == "datasource"}
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert all(t["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"] for t in p.get("targets", []))
    used = {re.sub(r"_(total|bucket|count|sum)$", "", name) for e in exprs for name in re.findall(r"caravan_\w+", e)}
    exported = set(families(scrape().content.decode()))
    assert used and used <= exported, used - exported


def test_a_prefork_workers_task_outcomes_reach_its_metrics_port(tmp_path):
    """A real worker with a prefork pool of two: tasks run in child processes; the main process's
    server on WORKER_METRICS_PORT reads them through PROMETHEUS_MULTIPROC_DIR."""
    import os
    import subprocess
    import sys
    import time

    from .servers import ROOT, database_url, free_port, log_tail

    port, queue = free_port(), f"tests-observe-{uuid.uuid4().hex[:8]}"
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict), "CELERY_QUEUE": queue,
           "WORKER_METRICS_PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(directory), "LOG_FORMAT": "json",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "platform")])}
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "caravan", "worker", "--pool", "prefork",
                                    "--concurrency", "2", "--loglevel", "INFO", "-n", f"{queue}@%h"],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while b"ready." not in log.read_bytes():  # (a loaded machine: give it time)
            assert process.poll() is None and time.monotonic() < deadline, log_tail(log)
            time.sleep(0.2)
        ok = celery_app.send_task("integrations.pull_due", queue=queue)  # no feeds: nothing to do
        bad = celery_app.send_task("caravan.fan_out", args=("no.such.task",), queue=queue)
        assert ok.get(timeout=60) == 0
        with pytest.raises(Exception):
            bad.get(timeout=60)
        expected = ['caravan_celery_tasks_total{outcome="succeeded",task="integrations.pull_due"} 1.0',
                    'caravan_celery_tasks_total{outcome="failed",task="caravan.fan_out"} 1.0']
        # Celery stores the result before it sends task_success/task_failure: wait for the counts.
        deadline = time.monotonic() + 20
        while True:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
            logged = any(line.get("task_name") == "integrations.pull_due" and line.get("task_id") == ok.id
                         and "succeeded" in line["message"] for line in lines)
            if all(e in body for e in expected) and logged:
                break
            assert time.monotonic() < deadline, (body, log_tail(log))
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_an_error_report_carries_the_request_id(sentry_events):
    import sentry_sdk
    from django.http import HttpResponse
    from django.test import RequestFactory

    def fail(request):
        sentry_sdk.capture_message("something broke")
        return HttpResponse("")

    request = RequestFactory().get("/", HTTP_HOST="alpha.localhost", HTTP_X_REQUEST_ID="req-sentry-1")
    with sentry_sdk.isolation_scope():
        metrics.ObservabilityMiddleware(fail)(request)
    sentry_sdk.flush()
    assert [e["tags"]["request_id"] for e in sentry_events] == ["req-sentry-1"]
