"""Periodic agency work is queued only where work is due (tenants.jobs), read from the real Redis queue:

- an agency with nothing due gets no task; one with no row yet is due now; a claim is taken once;
- creating work (a scheduled campaign, a task with a reminder, a complaint, a service clock) makes
  that agency due at the work's time, and only that agency (alpha's work never makes bravo due);
- suspended agencies are never queued;
- a job records its next due time from its data, capped by its safety net, and keeps work pulled
  while it ran;
- a claimed row for alpha queues a task that a real worker runs in alpha's schema.
"""
import json
import time
import uuid
from datetime import timedelta

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.utils import timezone
from django_tenants.utils import tenant_context

from caravan.celery import app as celery_app
from caravan.tenancy.tasks import AgencyTask, fan_out
from crm.campaigns import tasks as _campaign_tasks  # noqa: F401  (registers the jobs fanned out here)
from crm.care import services as care_services
from crm.care import tasks as _care_tasks  # noqa: F401
from crm.pipeline import services as pipeline_services
from crm.pipeline import tasks as pipeline_tasks
from crm.tiers import tasks as _tier_tasks  # noqa: F401
from tenants.jobs import services as agency_jobs
from tenants.jobs.models import AgencyJob
from tenants.models import Agency

from .care_factories import customer, user
from .conftest import staff

pytestmark = pytest.mark.django_db

REMINDERS = "pipeline.send_task_reminders"
COMPLAINTS = "care.escalate_complaints"
TICK = "campaigns.tick"
CLOCKS = "tiers.check_clocks"


def idle(job: str) -> None:
    """Every agency has run ``job`` and has nothing due for the next three days."""
    later = timezone.now() + timedelta(days=3)
    for agency in Agency.objects.agencies():
        AgencyJob.objects.unscoped().update_or_create(agency=agency, job=job, defaults={"due_at": later})


def time_passes(job: str, delta: timedelta) -> None:
    """Every agency's due time for ``job`` comes ``delta`` nearer (as if the clock moved on)."""
    AgencyJob.objects.unscoped().filter(job=job).update(due_at=F("due_at") - delta)


def due_at(agency, job: str):
    return AgencyJob.objects.unscoped().get(agency=agency, job=job).due_at


def queued(job: str, capture) -> list[str]:
    """Run the fan-out for ``job`` and return the schemas of the messages it put on the real queue
    (taken off again: nobody consumes it in these tests). Checks the returned count matches."""
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    before = broker.llen(queue)
    with capture(execute=True):
        count = fan_out(job)
    new = broker.lrange(queue, 0, broker.llen(queue) - before - 1)
    mine = [(raw, json.loads(raw)["headers"]) for raw in new]
    mine = [(raw, headers) for raw, headers in mine if headers["task"] == job]
    for raw, _headers in mine:
        broker.lrem(queue, 1, raw)
    assert count == len(mine)
    return sorted(headers["_schema_name"] for _raw, headers in mine)


def test_an_idle_agency_gets_no_task(alpha, bravo, django_capture_on_commit_callbacks):
    idle(REMINDERS)
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == []


def test_an_agency_without_a_row_is_due_now_and_claimed_once(alpha, bravo, charlie, django_capture_on_commit_callbacks):
    AgencyJob.objects.unscoped().filter(job=REMINDERS).delete()
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == ["alpha", "bravo"]
    # Claimed for the lease: the next beat (or a second scheduler) queues nothing.
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == []
    lease_end = due_at(alpha, REMINDERS)
    assert timedelta(minutes=14) < lease_end - timezone.now() <= agency_jobs.job_for(REMINDERS).lease
    # The lease ran out without the run recording anything (a lost message, a crash): queued again.
    time_passes(REMINDERS, timedelta(minutes=16))
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == ["alpha", "bravo"]


def test_a_task_with_a_reminder_makes_only_its_agency_due(alpha, bravo, django_capture_on_commit_callbacks):
    idle(REMINDERS)
    now = timezone.now()
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        pipeline_services.task_create(actor=None, owner=staff(alpha, "sales"), title="Call back", due_at=now + timedelta(hours=2),
                                      remind_at=now + timedelta(minutes=30))
    assert due_at(alpha, REMINDERS) == now + timedelta(minutes=30)
    assert due_at(bravo, REMINDERS) > now + timedelta(hours=23)
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == []  # not yet
    time_passes(REMINDERS, timedelta(minutes=31))
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == ["alpha"]


def test_a_reminder_moved_earlier_pulls_the_due_time(alpha, django_capture_on_commit_callbacks):
    now = timezone.now()
    with tenant_context(alpha):
        task = pipeline_services.task_create(actor=None, owner=staff(alpha, "sales"), title="Later",
                                             due_at=now + timedelta(days=3))
        idle(REMINDERS)
        with django_capture_on_commit_callbacks(execute=True):
            pipeline_services.task_update(actor=None, task=task, remind_at=now - timedelta(minutes=1))
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == ["alpha"]


def test_a_scheduled_campaign_makes_its_agency_due_at_its_start(alpha, bravo, django_capture_on_commit_callbacks):
    from crm.campaigns import services as campaign_services

    from .test_campaigns import campaign, people

    idle(TICK)
    at = timezone.now() + timedelta(hours=2)
    with tenant_context(alpha):
        people(2)
        made = campaign()
        with django_capture_on_commit_callbacks(execute=True):
            campaign_services.campaign_schedule(actor=None, campaign=made, at=at)
        assert campaign_services.campaigns_next_due() == at
    assert due_at(alpha, TICK) == at and due_at(bravo, TICK) > at
    time_passes(TICK, timedelta(hours=2, seconds=1))
    assert queued(TICK, django_capture_on_commit_callbacks) == ["alpha"]


def test_a_complaint_makes_its_agency_due_at_its_deadline(alpha, bravo, django_capture_on_commit_callbacks):
    idle(COMPLAINTS)
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        complaint = care_services.complaint_log(actor=user(alpha, "service"), customer=customer("王芳"),
                                                category="hotel", severity="high", description="Dirty room")
    assert due_at(alpha, COMPLAINTS) == complaint.deadline_at
    assert queued(COMPLAINTS, django_capture_on_commit_callbacks) == []
    time_passes(COMPLAINTS, complaint.deadline_at - timezone.now() + timedelta(seconds=1))
    assert queued(COMPLAINTS, django_capture_on_commit_callbacks) == ["alpha"]


def test_a_service_clock_makes_its_agency_due_at_its_near_breach_mark(alpha, bravo, django_capture_on_commit_callbacks):
    from crm.tiers import services as tier_services

    from .tier_factories import tier

    idle(CLOCKS)
    with tenant_context(alpha):
        tier("Gold", lead_response_hours=4)
        with django_capture_on_commit_callbacks(execute=True):
            clock = tier_services.clock_start(kind="lead", customer=customer("Li Lei"), key="lead:test")
        assert clock is not None
        near = clock.started_at + (clock.due_at - clock.started_at) * tier_services.NEAR_SHARE
        assert tier_services.clocks_next_due() == near
    assert due_at(alpha, CLOCKS) == near
    assert due_at(bravo, CLOCKS) > clock.due_at


def test_a_trip_confirmed_after_its_return_makes_its_agency_due_now(alpha, bravo, django_capture_on_commit_callbacks):
    from crm.trips import services as trip_services

    idle("care.after_trip")
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        today = trip_services.agency_today()
        trip = trip_services.trip_create(actor=None, customer=customer("Back Already"), title="Kyoto",
                                         depart_on=today - timedelta(days=9), return_on=today - timedelta(days=2))
        assert due_at(alpha, "care.after_trip") > timezone.now() + timedelta(days=2)  # a quote: nothing to follow up
        trip_services.trip_confirm(actor=None, trip=trip)
    assert queued("care.after_trip", django_capture_on_commit_callbacks) == ["alpha"]


def test_a_suspended_agency_is_never_queued(alpha, bravo, charlie, django_capture_on_commit_callbacks):
    idle(REMINDERS)
    with tenant_context(charlie), django_capture_on_commit_callbacks(execute=True):
        agency_jobs.due(REMINDERS)  # work there, e.g. written before the suspension
    assert due_at(charlie, REMINDERS) <= timezone.now()
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == []
    AgencyJob.objects.unscoped().filter(agency=charlie).delete()  # not even with no row at all
    assert queued(REMINDERS, django_capture_on_commit_callbacks) == []


def test_a_job_records_its_next_due_time_from_its_data(alpha, bravo):
    now = timezone.now()
    idle(REMINDERS)
    with tenant_context(alpha):
        pipeline_services.task_create(actor=None, owner=staff(alpha, "sales"), title="Soon", due_at=now + timedelta(hours=2),
                                      remind_at=now + timedelta(minutes=40))
        pipeline_tasks.send_task_reminders.apply()
    assert due_at(alpha, REMINDERS) == now + timedelta(minutes=40)
    assert AgencyJob.objects.unscoped().get(agency=alpha, job=REMINDERS).ran_at is not None
    assert due_at(bravo, REMINDERS) > now + timedelta(hours=23)  # alpha's run touches alpha's row only


def test_the_safety_net_runs_a_job_at_least_every_interval(alpha):
    every = agency_jobs.job_for(REMINDERS).every
    with tenant_context(alpha):
        pipeline_services.task_create(actor=None, owner=staff(alpha, "sales"), title="Far away",
                                      due_at=timezone.now() + timedelta(days=9), remind_at=timezone.now() + timedelta(days=8))
        before = timezone.now()
        pipeline_tasks.send_task_reminders.apply()  # next reminder in 8 days, but the net is an hour
        after = timezone.now()
    assert before + every <= due_at(alpha, REMINDERS) <= after + every
    with tenant_context(alpha):
        with agency_jobs.run("visits.generate_slots"):
            pass  # a job with no due time of its own: the net alone (nightly jobs: under a day)
    assert due_at(alpha, "visits.generate_slots") - timezone.now() == pytest.approx(timedelta(hours=20), abs=timedelta(seconds=5))


def test_every_fanned_out_job_has_its_rule_and_records_its_runs():
    """A beat entry fanning out a job missing from JOBS would fall back to the default safety net
    unnoticed, and a task not declared with ``agency_job`` would never record a run (queued again at
    every lease end)."""
    from crm.customers import tasks as _crm_tasks  # noqa: F401
    from crm.loyalty import tasks as _loyalty_tasks  # noqa: F401
    from crm.privacy import tasks as _privacy_tasks  # noqa: F401
    from crm.retention import tasks as _retention_tasks  # noqa: F401
    from crm.value import tasks as _value_tasks  # noqa: F401
    from crm.visits import tasks as _visit_tasks  # noqa: F401
    from accounts import tasks as _account_tasks  # noqa: F401

    fanned = {entry["args"][0] for entry in celery_app.conf.beat_schedule.values() if entry["task"] == "caravan.fan_out"}
    assert fanned == set(agency_jobs.JOBS)
    for name in fanned:
        assert getattr(celery_app.tasks[name].run, "agency_job", None) == name


def test_a_failed_run_records_nothing_and_is_queued_again_after_its_lease(alpha):
    idle(REMINDERS)
    before = due_at(alpha, REMINDERS)
    with tenant_context(alpha), pytest.raises(RuntimeError):
        with agency_jobs.run(REMINDERS) as run:
            run.next_at = timezone.now()
            raise RuntimeError("SMTP down")
    assert due_at(alpha, REMINDERS) == before


def test_work_pulled_while_a_run_is_in_progress_is_kept(alpha):
    idle(REMINDERS)
    soon = timezone.now() + timedelta(minutes=5)
    with tenant_context(alpha):
        with agency_jobs.run(REMINDERS) as run:
            agency_jobs._pull(alpha.pk, REMINDERS, soon)  # committed by a request during the run
            run.next_at = timezone.now() + timedelta(minutes=50)  # what the run had read before
    assert due_at(alpha, REMINDERS) == soon


def test_next_local_follows_the_agencys_clock(alpha):
    from datetime import datetime, time as clock_time
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    agency = Agency(time_zone="Asia/Shanghai")
    now = datetime(2026, 3, 1, 1, 30, tzinfo=shanghai)
    assert agency_jobs.next_local(agency, clock_time(2, 0), now=now) == datetime(2026, 3, 1, 2, 0, tzinfo=shanghai)
    now = datetime(2026, 3, 1, 2, 0, tzinfo=shanghai)
    assert agency_jobs.next_local(agency, clock_time(2, 0), now=now) == datetime(2026, 3, 2, 2, 0, tzinfo=shanghai)


# --- a real worker ---------------------------------------------------------------------------------

PROBE = f"tests.jobs_probe_{uuid.uuid4().hex[:8]}"  # its rows are committed by the worker: a fresh job each run


@celery_app.task(base=AgencyTask, name=PROBE)
def probe():
    with agency_jobs.run(PROBE):
        cache.set("jobs-probe", connection.schema_name, 60)
    return connection.schema_name


def test_a_claimed_row_runs_the_task_in_that_agencys_schema(django_db_blocker, alpha, bravo, charlie,
                                                           django_capture_on_commit_callbacks):
    for agency in (alpha, bravo, charlie):
        with tenant_context(agency):
            cache.delete("jobs-probe")
    celery_app.control.purge()
    with django_db_blocker.unblock(), start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        with django_capture_on_commit_callbacks(execute=True):  # a PlatformTask is sent on commit
            first = fan_out.delay(PROBE)
        assert first.get(timeout=20) == 2  # alpha and bravo: no rows yet, so due now
        seen, deadline = {}, time.monotonic() + 20
        while time.monotonic() < deadline and len(seen) < 2:
            for agency in (alpha, bravo):
                with tenant_context(agency):
                    if cache.get("jobs-probe"):
                        seen[agency.slug] = cache.get("jobs-probe")
            time.sleep(0.2)
        assert seen == {"alpha": "alpha", "bravo": "bravo"}
        with django_capture_on_commit_callbacks(execute=True):
            again = fan_out.delay(PROBE)
        assert again.get(timeout=20) == 0  # each recorded its next due time: idle now
    with tenant_context(charlie):
        assert cache.get("jobs-probe") is None


def test_a_new_time_zone_makes_the_local_clock_jobs_due_in_that_agency_only(alpha, bravo,
                                                                          django_capture_on_commit_callbacks):
    """Jobs that act at a local hour computed their next run in the old zone: they run again now."""
    from tenants.services import agency_update_settings

    local_jobs = ("tiers.assign_nightly", "loyalty.greetings", "care.after_trip")
    for job in local_jobs:
        idle(job)
    with django_capture_on_commit_callbacks(execute=True):
        agency_update_settings(agency=alpha, actor="test", time_zone="America/New_York")
    now = timezone.now()
    for job in local_jobs:
        assert AgencyJob.objects.unscoped().get(agency=alpha, job=job).due_at <= now
        assert AgencyJob.objects.unscoped().get(agency=bravo, job=job).due_at > now + timedelta(days=2)
