"""Celery and agencies, against a real Redis broker and a real worker thread.

- a task queued while agency A is active runs in A's schema and sees only A's rows;
- a task queued with no agency fails loudly, at queue time and again in the worker;
- tasks are sent on commit (never for a rolled-back transaction);
- periodic jobs fan out over live agencies only.
"""
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.cache import cache
from django.db import connection
from django_tenants.utils import tenant_context

from accounts.models import User
from caravan.celery import app as celery_app
from caravan.tenancy import NoAgencyError, require_agency
from caravan.tenancy.tasks import AgencyTask, fan_out

pytestmark = pytest.mark.django_db


@celery_app.task(base=AgencyTask, name="tests.whoami")
def whoami():
    return {"schema": connection.schema_name, "agency": require_agency().slug,
            "emails": sorted(User.objects.values_list("email", flat=True))}


@celery_app.task(base=AgencyTask, name="tests.mark_ran")
def mark_ran():
    cache.set("fan-out-ran", connection.schema_name, 60)
    return connection.schema_name


@pytest.fixture(scope="module")
def worker(django_db_blocker):
    celery_app.control.purge()
    with django_db_blocker.unblock():
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield


def test_task_runs_in_the_agency_that_queued_it(worker, alpha, django_capture_on_commit_callbacks):
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        result = whoami.delay()
    answer = result.get(timeout=20)
    assert answer["schema"] == "alpha" and answer["agency"] == "alpha"
    assert answer["emails"] and all(e.endswith("@alpha.test") for e in answer["emails"])


def test_two_agencies_tasks_do_not_mix(worker, alpha, bravo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with tenant_context(alpha):
            first = whoami.delay()
        with tenant_context(bravo):
            second = whoami.delay()
    assert first.get(timeout=20)["schema"] == "alpha"
    assert second.get(timeout=20)["schema"] == "bravo"
    assert all(e.endswith("@bravo.test") for e in second.get()["emails"])


def test_queueing_without_an_agency_fails_loudly():
    with pytest.raises(NoAgencyError):
        whoami.delay()


def test_worker_refuses_a_message_that_names_no_agency(worker):
    result = celery_app.send_task("tests.whoami", headers={"_schema_name": "public"})
    with pytest.raises(NoAgencyError):
        result.get(timeout=20, propagate=True)


def test_tasks_are_sent_only_on_commit(worker, alpha, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with tenant_context(alpha):
            result = whoami.delay()
    time.sleep(1)
    assert len(callbacks) == 1 and not result.ready()  # the transaction never committed: nothing sent
    callbacks[0]()
    assert result.get(timeout=20)["schema"] == "alpha"


def test_periodic_fan_out_reaches_live_agencies_only(worker, alpha, bravo, charlie, django_capture_on_commit_callbacks):
    for agency in (alpha, bravo, charlie):
        with tenant_context(agency):
            cache.delete("fan-out-ran")
    with django_capture_on_commit_callbacks(execute=True):  # the fan-out is a PlatformTask: sent on commit
        result = fan_out.delay("tests.mark_ran")
    assert result.get(timeout=20) == 2
    deadline = time.monotonic() + 20
    seen = {}
    while time.monotonic() < deadline and len(seen) < 2:
        for agency in (alpha, bravo):
            with tenant_context(agency):
                if cache.get("fan-out-ran"):
                    seen[agency.slug] = cache.get("fan-out-ran")
        time.sleep(0.2)
    assert seen == {"alpha": "alpha", "bravo": "bravo"}
    with tenant_context(charlie):  # suspended: its scheduled work does not run
        assert cache.get("fan-out-ran") is None


def test_clear_expired_sessions_runs_per_agency(alpha, bravo):
    from datetime import timedelta

    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from accounts.tasks import clear_expired_sessions

    for agency in (alpha, bravo):
        with tenant_context(agency):
            store = SessionStore()
            store.create()
            Session.objects.filter(session_key=store.session_key).update(expire_date=timezone.now() - timedelta(days=1))
    with tenant_context(alpha):
        assert clear_expired_sessions.apply().get() == 1
    with tenant_context(bravo):
        assert Session.objects.filter(expire_date__lt=timezone.now()).count() == 1
