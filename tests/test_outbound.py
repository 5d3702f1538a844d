"""Requests to addresses users give (supplier feeds): public addresses only, at save and at connect
time, on every redirect, with the operator's allow-list for on-premise suppliers (caravan/outbound.py)."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.exceptions import ValidationError

from caravan import outbound
from integrations import services
from integrations.models import Feed, FeedRun, Supplier

pytestmark = pytest.mark.django_db

INTERNAL = ["http://127.0.0.1:8000/feed", "http://localhost:6379/", "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/ota", "http://[::1]:5432/", "http://192.168.0.10/", "http://100.64.0.1/",
            "ftp://files.example.com/feed.xml", "file:///etc/passwd"]


class _Handler(BaseHTTPRequestHandler):
    hits: list[str] = []
    redirect_to = ""

    def do_GET(self):  # noqa: N802
        _Handler.hits.append(self.path)
        if _Handler.redirect_to:
            self.send_response(302)
            self.send_header("Location", _Handler.redirect_to)
            self.end_headers()
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<OTA_HotelAvailRS/>")

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    _Handler.hits, _Handler.redirect_to = [], ""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def a_feed(endpoint: str) -> Feed:
    supplier, _ = Supplier.objects.get_or_create(code="ssrf-hotels", defaults={"name": "SSRF Hotels", "kind": "hotel"})
    return Feed(supplier=supplier, name="Pulled", connector="ota_hotel", mode="pull", endpoint=endpoint, auth="none")


@pytest.mark.parametrize("url", INTERNAL)
def test_an_internal_address_is_a_field_error_when_the_feed_is_saved(url, settings):
    settings.OUTBOUND_ALLOWED = []
    with pytest.raises(ValidationError) as refused:
        services.feed_save(a_feed(url))
    assert list(refused.value.message_dict) == ["endpoint"]


def test_a_public_or_not_yet_resolvable_name_is_accepted_at_save(settings):
    settings.OUTBOUND_ALLOWED = []
    outbound.check_url("https://93.184.215.14/ota")  # a public address
    assert services.feed_save(a_feed("https://supplier.example.invalid/ota")).pk  # decided at connect time


def test_the_check_is_made_again_when_connecting(local_server, settings):
    """A feed saved before the rule (or a name that resolved elsewhere then) is refused when fetched,
    and the internal service never sees the request."""
    settings.OUTBOUND_ALLOWED = []
    feed = services.feed_save(a_feed("https://supplier.example.invalid/ota"))
    Feed.objects.unscoped().filter(pk=feed.pk).update(endpoint=f"http://localhost:{local_server}/internal")
    feed.refresh_from_db()
    run = services.run_pull(feed)
    assert run.status == FeedRun.Status.FAILED and "not a public address" in run.error
    assert _Handler.hits == []


def test_redirects_into_internal_addresses_or_other_schemes_are_refused(local_server, settings):
    settings.OUTBOUND_ALLOWED = ["127.0.0.1"]  # the supplier itself is allowed (on premises) …
    feed = services.feed_save(a_feed(f"http://127.0.0.1:{local_server}/ota"))
    _Handler.redirect_to = "http://169.254.169.254/latest/meta-data/"  # … but not where it sends us
    run = services.run_pull(feed)
    assert run.status == FeedRun.Status.FAILED and "not a public address (169.254.169.254)" in run.error
    _Handler.redirect_to = "file:///etc/passwd"  # urllib itself refuses to follow to file: (HTTP 302 kept)
    run = services.run_pull(feed)
    assert run.status == FeedRun.Status.FAILED and "root:" not in run.error


def test_the_operators_allow_list_opens_one_on_premise_supplier(local_server, settings):
    settings.OUTBOUND_ALLOWED = []
    with pytest.raises(ValidationError):
        services.feed_save(a_feed(f"http://127.0.0.1:{local_server}/ota"))
    settings.OUTBOUND_ALLOWED = ["127.0.0.0/8"]
    feed = services.feed_save(a_feed(f"http://127.0.0.1:{local_server}/ota"))
    services.fetch(feed).unlink()
    assert _Handler.hits == ["/ota"]


def test_an_agency_admin_cannot_point_a_feed_at_the_platforms_network(page_client, settings):
    settings.OUTBOUND_ALLOWED = []
    supplier = Supplier.objects.create(code="hub-hotels", name="HotelHub", kind="hotel", active=True)
    form = {"name": "Metadata", "connector": "ota_hotel", "mode": "pull",
            "endpoint": "http://169.254.169.254/latest/meta-data/", "auth": "none", "schedule_minutes": "60",
            "stale_after_minutes": "1440", "active": "on"}
    refused = page_client("alpha", "admin").post(f"/settings/suppliers/{supplier.pk}/connect/", form)
    assert refused.status_code == 400 and 'data-field="endpoint"' in refused.content.decode()
    assert not Feed.objects.unscoped().filter(name="Metadata").exists()
