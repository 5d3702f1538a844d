"""Bulk deletes run as set-based SQL with bounded memory (issue 17):

- no receiver listens to post_delete / pre_delete of every model any more (django-tenants' did), so
  Django's collector may fast-delete inventory, quarantine, session and import rows;
- deleting a feed removes every dependent row (runs, quarantine, rates, offers, credentials in the
  owner's schema) and nothing of another feed or agency, in a number of queries that does not grow
  with its rows;
- the nightly retention jobs (expired sessions, old import files) delete with set-based statements.
"""
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models.deletion import Collector
from django.db.models.signals import post_delete, pre_delete
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from crm.customers.models import ImportJob
from integrations import services
from integrations.credentials.models import FeedCredential
from integrations.models import Feed, FeedRun, FlightOffer, Hotel, HotelRate, QuarantinedRecord, Supplier
from tenants.models import Agency

from .conftest import staff

pytestmark = pytest.mark.django_db


def supplier() -> Supplier:
    return Supplier.objects.get_or_create(code="bulkhub", defaults={"name": "Bulk hub", "kind": "hotel"})[0]


def feed_with_rows(agency, rates: int, *, name: str) -> Feed:
    """A feed of ``agency`` (None: shared) with credentials, 3 runs with quarantined records,
    ``rates`` hotel rates over 10 hotels and ``rates // 10`` flight offers."""
    feed = services.feed_save(Feed(supplier=supplier(), name=name, connector="ota_hotel", mode="push", agency=agency),
                              username=f"user-{name}", secret="pw")
    hotels = [Hotel.objects.get_or_create(supplier=feed.supplier, code=f"H{i}", defaults={"name": f"Hotel {i}",
                                                                                         "city_code": "SHA"})[0]
              for i in range(10)]
    for r in range(3):
        run = FeedRun.objects.unscoped().create(feed=feed, trigger="push", status="succeeded")
        QuarantinedRecord.objects.unscoped().bulk_create([QuarantinedRecord(run=run, position=f"msg {i}", reason="bad")
                                               for i in range(5)])
    start = date(2027, 3, 1)
    HotelRate.objects.unscoped().bulk_create([
        HotelRate(feed=feed, agency=agency, hotel=hotels[i % 10], city_code="SHA", night=start + timedelta(days=i // 10),
                  room_type="DLK", rate_plan="BAR", amount=Decimal("800.00"), currency="CNY") for i in range(rates)],
        batch_size=5000)
    now = timezone.now()
    FlightOffer.objects.unscoped().bulk_create([
        FlightOffer(feed=feed, agency=agency, offer_id=f"off-{i}", origin="PVG", destination="NRT", departure_date=start,
                    departure=now, arrival=now + timedelta(hours=3), carrier="MU", flight_numbers="MU521", cabin="economy",
                    duration_minutes=180, stops=0, price=Decimal("1500.00"), currency="CNY") for i in range(rates // 10)])
    return feed


def counts(feed: Feed) -> dict:
    schema = feed.agency.schema_name if feed.agency_id else "public"
    with schema_context(schema):
        credentials = FeedCredential.objects.filter(feed_id=feed.pk).count()
    return {"feed": Feed.objects.unscoped().filter(pk=feed.pk).count(), "runs": FeedRun.objects.unscoped().filter(feed_id=feed.pk).count(),
            "quarantined": QuarantinedRecord.objects.unscoped().filter(run__feed_id=feed.pk).count(),
            "rates": HotelRate.objects.unscoped().filter(feed_id=feed.pk).count(),
            "offers": FlightOffer.objects.unscoped().filter(feed_id=feed.pk).count(), "credentials": credentials}


def test_no_receiver_listens_to_deletes_of_every_model():
    """django-tenants connected one to post_delete with no sender; now it hears the agency only."""
    for model in (HotelRate, FlightOffer, QuarantinedRecord, FeedRun, Session, ImportJob, FeedCredential):
        assert not post_delete.has_listeners(model) and not pre_delete.has_listeners(model), model
        assert Collector(using="default", origin=None).can_fast_delete(model._base_manager.none()) or model is FeedRun
    assert post_delete.has_listeners(Agency)


def test_feed_delete_knows_every_table_that_points_at_feeds():
    """feed_delete deletes table by table; a new foreign key to feeds or runs must be added there."""
    from django.db.models.deletion import get_candidate_relations_to_delete

    def pointing(model):
        return {(rel.related_model, rel.field.name) for rel in get_candidate_relations_to_delete(model._meta)}

    assert pointing(Feed) == {(FeedRun, "feed"), (HotelRate, "feed"), (FlightOffer, "feed")}
    assert pointing(FeedRun) == {(QuarantinedRecord, "run")}


def test_deleting_a_feed_removes_all_its_rows_and_nothing_of_another_feed_or_agency(alpha, bravo):
    mine = feed_with_rows(alpha, 200, name="alpha-own")
    theirs = feed_with_rows(bravo, 200, name="bravo-own")
    shared = feed_with_rows(None, 100, name="shared")
    before_theirs, before_shared = counts(theirs), counts(shared)
    assert counts(mine) == {"feed": 1, "runs": 3, "quarantined": 15, "rates": 200, "offers": 20, "credentials": 1}
    services.feed_delete(mine)
    assert counts(mine) == {"feed": 0, "runs": 0, "quarantined": 0, "rates": 0, "offers": 0, "credentials": 0}
    assert counts(theirs) == before_theirs and counts(shared) == before_shared
    assert Hotel.objects.filter(supplier=supplier()).count() == 10  # hotels are the supplier's, shared by its feeds


def test_deleting_a_feed_takes_the_same_number_of_queries_however_many_rows_it_has(alpha):
    small, big = feed_with_rows(alpha, 20, name="small"), feed_with_rows(alpha, 5000, name="big")
    queries = {}
    for feed in (small, big):
        with CaptureQueriesContext(connection) as captured:
            services.feed_delete(feed)
        queries[feed.name] = len(captured)
        assert not any(f"{HotelRate._meta.db_table}\".\"id\" IN" in q["sql"] for q in captured.captured_queries)
        assert counts(feed)["rates"] == 0
    assert queries["small"] == queries["big"] and queries["big"] <= 15


def test_expired_sessions_go_in_one_statement(alpha):
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.tasks import clear_expired_sessions

    with tenant_context(alpha):
        keys = []
        for _ in range(30):
            store = SessionStore()
            store.create()
            keys.append(store.session_key)
        Session.objects.filter(session_key__in=keys[:25]).update(expire_date=timezone.now() - timedelta(days=1))
        with CaptureQueriesContext(connection) as captured:
            assert clear_expired_sessions.apply().get() == 25
        deletes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("DELETE")]
        assert len(deletes) == 1 and not any("IN (" in sql for sql in deletes)
        assert Session.objects.filter(session_key__in=keys).count() == 5


def test_old_import_files_are_forgotten_by_batch(alpha, settings, tmp_path):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from crm.customers import imports

    settings.MEDIA_ROOT = str(tmp_path)
    old = timezone.now() - imports.KEEP_FILES - timedelta(days=1)
    with tenant_context(alpha):
        admin = staff(alpha, "admin")

        def job(status, **fields):
            made = ImportJob.objects.create(created_by=admin, status=status, **fields)
            made.file.save(f"{status}.csv", ContentFile(b"name\nX\n"), save=True)
            return made

        done = [job(ImportJob.Status.DONE, finished_at=old) for _ in range(3)]
        abandoned = [job(ImportJob.Status.UPLOADED) for _ in range(4)]
        recent = job(ImportJob.Status.UPLOADED)
        ImportJob.objects.filter(pk__in=[j.pk for j in abandoned]).update(created_at=old)
        files = [j.file.name for j in done + abandoned]
        with CaptureQueriesContext(connection) as captured:
            assert imports.forget_old_files() == 7
        assert len(captured) <= 8  # per batch: one read, one UPDATE or DELETE; not per job
        assert not any(default_storage.exists(name) for name in files)
        assert ImportJob.objects.filter(pk__in=[j.pk for j in done], file="").count() == 3
        assert not ImportJob.objects.filter(pk__in=[j.pk for j in abandoned]).exists()
        assert ImportJob.objects.filter(pk=recent.pk).exists() and default_storage.exists(recent.file.name)


def test_an_agencys_shared_rows_go_set_based_when_its_row_is_deleted(alpha):
    """The agency row's cascade (its own feeds' inventory, due times, events…) deletes by
    ``agency_id`` / ``feed_id``, never row by row (a bare agency row: no schema to drop)."""
    from tenants.jobs.models import AgencyJob

    Agency.objects.bulk_create([Agency(name="Gone", slug="gone-bulk", schema_name="gone_bulk")])
    gone = Agency.objects.get(slug="gone-bulk")
    feed = Feed.objects.unscoped().create(supplier=supplier(), name="gone", connector="ota_hotel", mode="push", agency=gone)
    hotel = Hotel.objects.create(supplier=feed.supplier, code="HG", name="Hotel G", city_code="SHA")
    HotelRate.objects.unscoped().bulk_create([HotelRate(feed=feed, agency=gone, hotel=hotel, city_code="SHA", room_type="DLK",
                                             rate_plan="BAR", night=date(2027, 3, 1) + timedelta(days=i)) for i in range(3000)])
    AgencyJob.objects.unscoped().create(agency=gone, job="campaigns.tick")
    with CaptureQueriesContext(connection) as captured:
        Agency.objects.filter(pk=gone.pk).delete()
    rate_table = HotelRate._meta.db_table
    rate_deletes = [q["sql"] for q in captured.captured_queries if q["sql"].startswith(f'DELETE FROM "{rate_table}"')]
    assert rate_deletes and all(len(sql) < 300 for sql in rate_deletes)  # by feed or agency id, not a list of rate ids
    assert not HotelRate.objects.unscoped().filter(feed_id=feed.pk).exists() and not AgencyJob.objects.unscoped().filter(agency_id=gone.pk).exists()
    assert not any(f'"{rate_table}"."id"' in q["sql"] and "SELECT" in q["sql"] for q in captured.captured_queries)
