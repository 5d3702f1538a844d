"""An agency's own supplier feeds (R-INT-2): its credentials kept in its own schema, its admins connect
and watch them from Settings, the plan's number of feeds, the fence between agencies, suspended
agencies' feeds wait, their alerts go to the agency's admins too, and key rotation re-encrypts them."""
import base64
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django_tenants.utils import schema_context

from billing.models import Plan
from crm.customers import crypto
from integrations import services
from integrations.credentials.models import FeedCredential
from integrations.models import Feed, HotelRate, Supplier
from tests.conftest import host
from tests import test_integrations
from tests.test_integrations import SAMPLES, _signed, _Supplier, run

supplier_server = test_integrations.supplier_server  # the local supplier (a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _spool(settings, tmp_path):
    settings.FEED_SPOOL_DIR = tmp_path / "spool"


@pytest.fixture
def basic_server(supplier_server):
    """The local supplier, answering only to alpha's own account (HTTP Basic)."""
    _Supplier.token = None
    _Supplier.basic = base64.b64encode(b"alpha-corp:pw-alpha").decode()
    yield supplier_server
    _Supplier.token, _Supplier.basic = "tok-123", None


def hotels() -> Supplier:
    return Supplier.objects.get_or_create(code="hotelhub", defaults={"name": "HotelHub 酒店通", "kind": "hotel"})[0]


def credentials_in(schema: str, feed: Feed) -> list[FeedCredential]:
    with schema_context(schema):
        return list(FeedCredential.objects.filter(feed_id=feed.pk))


def test_an_agencys_credentials_are_kept_in_its_own_schema_and_used_for_its_pulls(alpha, bravo, basic_server):
    feed = services.feed_save(Feed(supplier=hotels(), name="Alpha corporate rates", connector="ota_hotel", mode="pull",
                                   endpoint=basic_server, auth="basic", agency=alpha),
                              username="alpha-corp", secret="pw-alpha")
    assert credentials_in("public", feed) == [] and credentials_in(bravo.schema_name, feed) == []
    [stored] = credentials_in(alpha.schema_name, feed)
    assert stored.username == "alpha-corp" and "pw-alpha" not in stored.secret_encrypted
    assert crypto.decrypt(stored.secret_encrypted) == "pw-alpha"
    done = services.run_pull(feed)
    assert (done.status, done.rows_accepted) == ("succeeded", 9)
    assert set(HotelRate.objects.unscoped().filter(feed=feed).values_list("agency_id", flat=True)) == {alpha.pk}
    # A shared feed's credentials are the platform's, in the public schema.
    shared = services.feed_save(Feed(supplier=hotels(), name="Shared", connector="ota_hotel", mode="pull",
                                     endpoint=basic_server, auth="bearer"), secret="tok-shared")
    assert len(credentials_in("public", shared)) == 1 and credentials_in(alpha.schema_name, shared) == []
    # Removing the feed removes its credentials and its inventory.
    services.feed_delete(feed)
    assert credentials_in(alpha.schema_name, feed) == [] and not HotelRate.objects.unscoped().filter(feed_id=feed.pk).exists()


def test_an_agencys_pushes_are_signed_with_its_own_key(alpha, client):
    feed = services.feed_save(Feed(supplier=hotels(), name="Pushed", connector="ota_hotel", mode="push", agency=alpha))
    secret = services.push_secret(feed)
    assert secret and credentials_in("public", feed) == []
    body = (SAMPLES / "ota_hotel_avail_rs.xml").read_bytes()
    url = f"/integrations/push/{feed.push_key}/"
    client.defaults["HTTP_HOST"] = host(None)
    assert client.post(url, body, content_type="application/xml", HTTP_X_CARAVAN_SIGNATURE=_signed("guess", body)).status_code == 401
    assert client.post(url, body, content_type="application/xml", HTTP_X_CARAVAN_SIGNATURE=_signed(secret, body)).status_code == 202


def test_a_feed_stays_with_the_agency_it_was_made_for(alpha, bravo):
    feed = services.feed_save(Feed(supplier=hotels(), name="Alpha", connector="ota_hotel", mode="push", agency=alpha))
    feed.agency = bravo
    with pytest.raises(ValidationError) as moved:
        services.feed_save(feed)
    assert "agency" in moved.value.message_dict
    assert Feed.objects.unscoped().get(pk=feed.pk).agency_id == alpha.pk


def test_agency_admins_connect_watch_and_remove_their_own_feeds(alpha, bravo, page_client, operator_client, basic_server):
    supplier = hotels()
    admin = page_client("alpha", "admin")
    listing = admin.get("/settings/suppliers/").content.decode()
    assert "HotelHub 酒店通" in listing and f"/settings/suppliers/{supplier.pk}/connect/" in listing
    assert page_client("alpha", "sales").get("/settings/suppliers/").status_code == 403
    form = {"name": "Our corporate rates", "connector": "ota_hotel", "mode": "pull", "endpoint": basic_server,
            "auth": "basic", "username": "alpha-corp", "secret": "", "schedule_minutes": "60",
            "stale_after_minutes": "1440", "active": "on", "agency": str(bravo.pk)}
    missing = admin.post(f"/settings/suppliers/{supplier.pk}/connect/", form)
    assert missing.status_code == 400 and 'data-field="secret"' in missing.content.decode()
    assert admin.post(f"/settings/suppliers/{supplier.pk}/connect/", {**form, "secret": "pw-alpha"}).status_code == 302
    feed = Feed.objects.unscoped().get(name="Our corporate rates")
    assert feed.agency_id == alpha.pk  # the posted agency is ignored: an agency's feed is its own
    detail = admin.get(f"/settings/suppliers/feeds/{feed.pk}/").content.decode()
    assert "alpha-corp" in detail and "pw-alpha" not in detail and 'data-test="health">' in detail
    finished = services.run_pull(feed)
    assert admin.get("/settings/suppliers/").content.decode().count('data-test="health">Healthy') == 1
    run_page = admin.get(f"/settings/suppliers/runs/{finished.pk}/").content.decode()
    assert "SHABAD" in run_page and "ISO 4217" in run_page  # its own quarantine
    # Operators see the agency's feed in the console, but never its password.
    console = operator_client.get(f"/feeds/{feed.pk}/").content.decode()
    assert "alpha-corp" in console and "pw-alpha" not in console
    # Another agency's admin finds nothing of it: not by id, not its runs, cannot change or remove it.
    other = page_client("bravo", "admin")
    assert "Our corporate rates" not in other.get("/settings/suppliers/").content.decode()
    for url in (f"/settings/suppliers/feeds/{feed.pk}/", f"/settings/suppliers/feeds/{feed.pk}/edit/",
                f"/settings/suppliers/runs/{finished.pk}/"):
        assert other.get(url).status_code == 404
    assert other.post(f"/settings/suppliers/feeds/{feed.pk}/", {"action": "delete"}).status_code == 404
    assert other.post(f"/settings/suppliers/feeds/{feed.pk}/edit/", {**form, "secret": "stolen"}).status_code == 404
    assert page_client("alpha", "admin", on=host("bravo")).get(f"/settings/suppliers/feeds/{feed.pk}/").status_code != 200
    assert Feed.objects.unscoped().filter(pk=feed.pk).exists()
    assert crypto.decrypt(credentials_in(alpha.schema_name, feed)[0].secret_encrypted) == "pw-alpha"
    # A new push key is shown once; removing the feed takes its inventory with it.
    pushed = admin.post(f"/settings/suppliers/{supplier.pk}/connect/", {**form, "name": "Pushed", "mode": "push",
                                                                          "endpoint": "", "auth": "none"})
    push_feed = Feed.objects.unscoped().get(name="Pushed")
    shown = admin.get(pushed["Location"]).content.decode()
    assert services.push_secret(push_feed) in shown and "/integrations/push/" in shown
    assert services.push_secret(push_feed) not in admin.get(pushed["Location"]).content.decode()
    assert admin.post(f"/settings/suppliers/feeds/{feed.pk}/", {"action": "delete"}).status_code == 302
    assert not Feed.objects.unscoped().filter(pk=feed.pk).exists() and not HotelRate.objects.unscoped().filter(feed_id=feed.pk).exists()


def test_the_plan_limits_an_agencys_own_feeds(alpha, page_client):
    Plan.objects.create(code=alpha.plan, name="Starter 入门版", seat_price_month=Decimal("99"),
                        seat_price_year=Decimal("990"), supplier_feeds=1)
    services.feed_save(Feed(supplier=hotels(), name="First", connector="ota_hotel", mode="push", agency=alpha))
    refused = page_client("alpha", "admin").post(f"/settings/suppliers/{hotels().pk}/connect/", {
        "name": "Second", "connector": "ota_hotel", "mode": "push", "auth": "none", "schedule_minutes": "60",
        "stale_after_minutes": "1440", "active": "on"})
    assert refused.status_code == 400 and "Starter 入门版" in refused.content.decode()
    assert not Feed.objects.unscoped().filter(name="Second").exists()
    # A paused one does not count; shared feeds never do.
    services.feed_save(Feed(supplier=hotels(), name="Paused", connector="ota_hotel", mode="push", agency=alpha, active=False))
    services.feed_save(Feed(supplier=hotels(), name="Shared", connector="ota_hotel", mode="push"))


def test_a_suspended_agencys_feeds_are_not_pulled(alpha, basic_server):
    feed = services.feed_save(Feed(supplier=hotels(), name="Alpha", connector="ota_hotel", mode="pull",
                                   endpoint=basic_server, auth="basic", agency=alpha), username="alpha-corp", secret="pw-alpha")
    assert [f.pk for f in services.due_feeds()] == [feed.pk]
    type(alpha).objects.filter(pk=alpha.pk).update(status="suspended")
    assert services.due_feeds() == []


def test_an_agencys_failing_feed_alerts_its_admins_too(alpha, bravo, mailbox, tmp_path):
    from integrations.tasks import alert_agency_admins

    feed = services.feed_save(Feed(supplier=hotels(), name="Alpha corporate", connector="ota_hotel", mode="push", agency=alpha))
    run(feed, content=b"<nope", tmp=tmp_path)
    [alerted] = services.check_health()
    assert alert_agency_admins.run(alpha.pk, [alerted.pk]) >= 1
    [message] = [m for m in mailbox if m["To"] == "admin@alpha.test"]
    assert "Alpha corporate" in message.get_payload()
    # Another agency's admins never hear of alpha's feed, whatever ids the task is given.
    assert alert_agency_admins.run(bravo.pk, [alerted.pk]) == 0
    assert not [m for m in mailbox if m["To"].endswith("@bravo.test")]


def test_key_rotation_re_encrypts_feed_credentials_in_every_schema(alpha, settings):
    from cryptography.fernet import Fernet

    own = services.feed_save(Feed(supplier=hotels(), name="Own", connector="ota_hotel", mode="pull",
                                  endpoint="https://example.test/ota", auth="bearer", agency=alpha), secret="tok-own")
    shared = services.feed_save(Feed(supplier=hotels(), name="Shared", connector="ota_hotel", mode="pull",
                                     endpoint="https://example.test/ota", auth="bearer"), secret="tok-shared")
    before = {f.pk: services.credential(f).secret_encrypted for f in (own, shared)}
    push_before = services.push_secret(own)
    settings.DOCUMENT_KEYS = f"{Fernet.generate_key().decode()},{settings.DOCUMENT_KEYS}"
    call_command("rotate_document_keys", verbosity=0, stdout=open("/dev/null", "w"))
    settings.DOCUMENT_KEYS = settings.DOCUMENT_KEYS.split(",")[0]  # only the new key from now on
    for feed, secret in ((own, "tok-own"), (shared, "tok-shared")):
        stored = services.credential(feed)
        assert stored.secret_encrypted != before[feed.pk] and crypto.decrypt(stored.secret_encrypted) == secret
    assert services.push_secret(own) == push_before


def test_run_now_from_an_agencys_host_is_queued_as_platform_work(alpha, page_client, django_capture_on_commit_callbacks,
                                                                 settings, basic_server):
    """The feed's run reads and writes the shared inventory: it is queued in the public schema, not in
    the schema of the agency whose admin pressed "Run now"."""
    import json

    import redis

    feed = services.feed_save(Feed(supplier=hotels(), name="Alpha", connector="ota_hotel", mode="pull",
                                   endpoint=basic_server, auth="basic", agency=alpha), username="alpha-corp", secret="pw-alpha")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    before = broker.llen(queue)
    with django_capture_on_commit_callbacks(execute=True):
        answer = page_client("alpha", "admin").post(f"/settings/suppliers/feeds/{feed.pk}/", {"action": "run"})
    assert answer.status_code == 302
    mine = [(raw, json.loads(raw)["headers"]) for raw in broker.lrange(queue, 0, broker.llen(queue) - before - 1)]
    mine = [(raw, h) for raw, h in mine if h["task"] == "integrations.run_feed" and h["argsrepr"].startswith(f"({feed.pk},")]
    for raw, _headers in mine:
        broker.lrem(queue, 1, raw)  # nobody consumes this queue in the test
    assert len(mine) == 1 and mine[0][1]["_schema_name"] == "public"
