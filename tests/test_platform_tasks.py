"""Platform tasks (caravan.tenancy.tasks.PlatformTask), against a real Redis broker and worker thread:
queued from an agency's context they still name and run in the public schema; they are sent on
commit only; their body refuses to run inside an agency's schema; and every billing, feed, tenant
and portability task is one."""
import json
import time

import pytest
import redis
from django.db import connection, transaction
from django_tenants.utils import tenant_context

from caravan.celery import app as celery_app
from caravan.tenancy import AgencyActiveError
from caravan.tenancy.tasks import PlatformTask
from tests.test_tasks import worker  # noqa: F401  (the module's worker thread, a fixture)

pytestmark = pytest.mark.django_db


@celery_app.task(base=PlatformTask, name="tests.platform_whereami", bind=True)
def whereami(self):
    return {"schema": connection.schema_name, "header": (self.request.headers or {}).get("_schema_name")
            or self.request.get("_schema_name")}


class Boom(Exception):
    pass


def test_queued_inside_an_agency_it_names_and_runs_in_public(worker, alpha, django_capture_on_commit_callbacks):  # noqa: F811
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        result = whereami.delay()
        assert connection.schema_name == "alpha"  # queueing does not move the caller
    assert result.get(timeout=20) == {"schema": "public", "header": "public"}


def test_the_message_names_public_whatever_headers_it_is_given(alpha, settings, django_capture_on_commit_callbacks):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = "tests-platform-tasks"
    broker.delete(queue)
    with tenant_context(alpha), django_capture_on_commit_callbacks(execute=True):
        whereami.apply_async(queue=queue, headers={"_schema_name": "alpha"})
    [raw] = broker.lrange(queue, 0, -1)
    broker.delete(queue)
    assert json.loads(raw)["headers"]["_schema_name"] == "public"


def test_its_body_refuses_to_run_in_an_agencys_schema(worker, alpha):  # noqa: F811
    with tenant_context(alpha):
        with pytest.raises(AgencyActiveError):
            whereami()
    assert whereami()["schema"] == "public"
    # A message that names an agency (not sent by PlatformTask: by hand) is refused by the worker.
    result = celery_app.send_task("tests.platform_whereami", headers={"_schema_name": "alpha"})
    with pytest.raises(AgencyActiveError):
        result.get(timeout=20, propagate=True)


def test_a_rolled_back_transaction_sends_nothing(worker, alpha, django_capture_on_commit_callbacks):  # noqa: F811
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(Boom), tenant_context(alpha), transaction.atomic():
            result = whereami.delay()
            raise Boom
    assert callbacks == []
    time.sleep(1)
    assert not result.ready()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        later = whereami.delay()
    time.sleep(1)
    assert len(callbacks) == 1 and not later.ready()  # not committed yet: not sent
    callbacks[0]()
    assert later.get(timeout=20)["schema"] == "public"


def test_every_platform_side_task_is_a_platform_task():
    celery_app.loader.import_default_modules()
    platform = [name for name in celery_app.tasks if name.split(".")[0] in ("billing", "integrations", "tenants",
                                                                            "portability")]
    platform += ["caravan.fan_out", "caravan.leases_watchdog", "mfa.new_device_mail_platform"]
    assert len(platform) >= 16
    wrong = [name for name in platform if not isinstance(celery_app.tasks[name], PlatformTask)]
    assert wrong == [], f"make these @shared_task(base=PlatformTask, ...): {wrong}"
