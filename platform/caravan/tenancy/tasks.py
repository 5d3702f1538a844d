"""Celery base tasks that know about agencies (after pretix's EventTask).

- :class:`AgencyTask` captures the active agency when queued, refuses to be queued from the
  public schema, is sent only after the surrounding transaction commits, and checks again in
  the worker that it really runs inside an agency schema.
- :class:`PlatformTask` is its twin for platform work (billing, feeds, tenants, portability, the
  fan-out): queued with the public schema whatever agency is active, sent on commit, and refusing
  to run anywhere but the public schema.
- :func:`fan_out` is the platform-side periodic job that queues an agency task in each live agency
  where that job has work due (``tenants.jobs``).
- :func:`agency_job` declares such a periodic job: the task runs inside ``tenants.jobs`` and records
  when its data next needs it.
"""
import functools

import sentry_sdk
from celery import shared_task
from celery.utils import uuid
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, tenant_context
from tenant_schemas_celery.task import TenantTask, headers_with_schema

from . import AgencyActiveError, NoAgencyError


class AgencyTask(TenantTask):
    abstract = True

    def apply_async(self, args=None, kwargs=None, **options):
        headers = headers_with_schema(options.pop("headers", None) or {})
        if headers["_schema_name"] == get_public_schema_name():
            raise NoAgencyError(
                f"Task {self.name} was queued with no agency active; activate the agency first."
            )
        options["headers"] = headers
        task_id = options.setdefault("task_id", uuid())
        send = super().apply_async
        # The message carries the schema; sending on commit means the worker never looks for
        # rows the request has not committed yet, and a rolled-back request sends nothing.
        transaction.on_commit(lambda: send(args, kwargs, **options))
        return self.AsyncResult(task_id)

    def __call__(self, *args, **kwargs):
        if connection.schema_name == get_public_schema_name():
            raise NoAgencyError(f"Task {self.name} reached the worker without an agency; refusing to run in public.")
        sentry_sdk.get_isolation_scope().set_tag("agency", connection.tenant.slug)
        # The agency's time zone, as a request has it: what the task shows or mails (caravan.formatting)
        # and the days it computes are the agency's.
        with timezone.override(getattr(connection.tenant, "time_zone", None) or settings.TIME_ZONE):
            return super().__call__(*args, **kwargs)


class PlatformTask(TenantTask):
    """A task that works on the public schema. Queueing it from an agency's request is fine (an
    agency's admin runs its own feed now): the message always names the public schema, so the
    caller needs no ``schema_context(public)`` to queue it, and it is sent once the surrounding
    transaction commits (nothing for a rolled-back one), so no ``transaction.on_commit`` either."""
    abstract = True

    def _public(self, options: dict) -> dict:
        headers = dict(options.pop("headers", None) or {})
        headers["_schema_name"] = get_public_schema_name()
        options["headers"] = headers
        return options

    def apply_async(self, args=None, kwargs=None, **options):
        options = self._public(options)
        task_id = options.setdefault("task_id", uuid())
        send = functools.partial(super().apply_async, args, kwargs, **options)
        send.task_name = self.name  # which task a pending on-commit callback sends (tests look)
        transaction.on_commit(send)
        return self.AsyncResult(task_id)

    def apply(self, args=None, kwargs=None, *arg, **kw):  # run here and now (eager), still in public
        return super().apply(args, kwargs, *arg, **self._public(kw))

    def __call__(self, *args, **kwargs):
        if connection.schema_name != get_public_schema_name():
            raise AgencyActiveError(f"Task {self.name} is platform work; refusing to run in {connection.schema_name}.")
        return super().__call__(*args, **kwargs)


def agency_job(name: str, *, next_due=None, **options):
    """Declare the periodic agency job ``name`` (an :class:`AgencyTask` fanned out by :func:`fan_out`):
    its body runs inside ``tenants.jobs.services.run(name)``, and ``next_due()`` (the app's service,
    called after the body) tells when the agency's data next needs it; without it the job's safety
    net decides. Other keyword arguments go to ``shared_task``."""
    def decorate(body):
        @functools.wraps(body)
        def recorded(*args, **kwargs):
            from tenants.jobs.services import run

            with run(name) as job:
                result = body(*args, **kwargs)
                if next_due is not None:
                    job.next_at = next_due()
            return result
        recorded.agency_job = name  # what tests look for: every fanned-out job is declared here
        return shared_task(base=AgencyTask, name=name, **options)(recorded)
    return decorate


@shared_task(base=PlatformTask, name="caravan.fan_out")
def fan_out(task_name: str, *args, **kwargs) -> int:
    """Queue ``task_name`` in every live agency (trial, active, past due) where it has work due, as
    recorded in ``tenants.jobs`` (one claiming statement; an agency with no row yet is due). Each
    claimed agency gets one task; idle agencies get none. Returns the count."""
    from celery import current_app

    from tenants.jobs.services import claim_due

    task = current_app.tasks[task_name]
    count = 0
    for agency in claim_due(task_name):
        with tenant_context(agency):
            task.delay(*args, **kwargs)
        count += 1
    return count
