"""Tasks are made only by ``task_create`` or its set-based twin ``tasks_create_sql`` (issue 19), and
the two make the same task from the same inputs, under one key."""
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.pipeline.models import Task
from crm.pipeline.services import task_create, tasks_create_sql
from crm.trips.models import Trip

from .conftest import staff
from .task_checks import task_fields

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent

ROWS = "SELECT %(title)s, %(notes)s, %(owner)s::bigint, %(customer)s::bigint, %(due)s, %(key)s, %(now)s"


def _customer(name="Li Wei 李伟"):
    return crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name=name)


def _twin(kind=Task.Kind.CALL, *, returning=True, **values) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(tasks_create_sql(ROWS, kind=kind, returning=returning), {"now": timezone.now(), **values})
        return [row[0] for row in cursor.fetchall()] if returning else []


def test_the_twin_makes_what_task_create_makes_under_one_key(alpha):
    with tenant_context(alpha):
        owner, customer = staff(alpha, "sales"), _customer()
        inputs = dict(title="  Call back: Li Wei 李伟 \n", notes=" Ask about Kyoto.\n", owner=owner.pk,
                      customer=customer.pk, due=timezone.now() + timedelta(days=2))
        [made_id] = _twin(**inputs, key="twin:1")
        made = Task.objects.get(pk=made_id)
        by_hand = task_create(actor=None, kind=Task.Kind.CALL, title=inputs["title"], notes=inputs["notes"],
                              owner=owner, customer=customer, due_at=inputs["due"], key="twin:2")
        assert task_fields(made) == task_fields(by_hand)
        assert (made.title, made.notes, made.remind_at, made.created_by) == ("Call back: Li Wei 李伟", "Ask about Kyoto.",
                                                                              None, None)
        # A second run makes nothing; a row under task_create's key leaves that task as it was.
        assert _twin(**inputs, key="twin:1") == []
        assert _twin(**{**inputs, "title": "Changed"}, key="twin:2") == []
        assert Task.objects.get(pk=by_hand.pk).title == by_hand.title
        # task_create under the twin's key hands back the twin's task.
        again = task_create(actor=None, title="Other", owner=None, due_at=timezone.now(), key="twin:1")
        assert again.pk == made.pk and Task.objects.get(pk=made.pk).title == made.title
        assert Task.objects.filter(key__startswith="twin:").count() == 2


def test_the_twin_refuses_what_task_create_refuses(alpha):
    with tenant_context(alpha):
        customer = _customer()
        good = dict(title="Call", notes="", owner=None, customer=customer.pk, due=timezone.now())
        for bad in ({"title": "   "}, {"due": None}):
            values = {**good, **bad}
            with pytest.raises(ValidationError):
                task_create(actor=None, owner=None, customer=customer, title=values["title"], due_at=values["due"])
            with pytest.raises(IntegrityError), transaction.atomic():
                _twin(**values, key="refused")
        assert not Task.objects.filter(key="refused").exists()
        with pytest.raises(ValueError):
            tasks_create_sql(ROWS, kind="party")
        with pytest.raises(ValidationError):
            task_create(actor=None, owner=None, title="Call", due_at=timezone.now(), kind="party")
        # The title is cut to what the column holds, as the jobs always did.
        [made_id] = _twin(**{**good, "title": "长" * 250}, key="long")
        assert Task.objects.get(pk=made_id).title == "长" * 200


def test_the_twin_links_the_trip_and_writes_the_active_agency_only(alpha, bravo):
    rows = "SELECT %(title)s, '', NULL::bigint, %(customer)s, %(trip)s, %(due)s, %(key)s, %(now)s"

    def after_trip_task(key: str):
        customer = _customer()
        trip = Trip.objects.create(customer=customer, title="Kyoto", destination="Japan", currency="CNY")
        with connection.cursor() as cursor:
            cursor.execute(tasks_create_sql(rows, kind=Task.Kind.AFTER_TRIP_CALL, trip=True),
                           {"title": "After-trip call: Kyoto", "customer": customer.pk, "trip": trip.pk,
                            "due": timezone.now(), "key": key, "now": timezone.now()})
            assert cursor.rowcount == 1
        task = Task.objects.get(key=key)
        assert (task.trip, task.customer, task.kind) == (trip, customer, Task.Kind.AFTER_TRIP_CALL)

    with tenant_context(alpha):
        after_trip_task("twin-trip:alpha")
    with tenant_context(bravo):
        assert not Task.objects.filter(key="twin-trip:alpha").exists()
        after_trip_task("twin-trip:bravo")
    with tenant_context(alpha):
        assert not Task.objects.filter(key="twin-trip:bravo").exists()
        assert Task.objects.filter(key="twin-trip:alpha").count() == 1


# Application code only: tests, benches (test data) and migrations may write tasks their own way.
_MAKES_TASKS = re.compile(r"INSERT\s+INTO\s+(\{task\w*\}|\"?pipeline_task\b|\{Task\._meta)"
                          r"|\bTask\.objects\.(create|bulk_create|get_or_create|update_or_create)\("
                          r"|\.tasks\.(create|bulk_create|get_or_create)\(", re.IGNORECASE)
_THE_HOME = ROOT / "crm" / "pipeline" / "services.py"


def test_tasks_are_made_only_in_the_pipeline_services():
    found = []
    for folder in ("crm", "frontend", "platform", "integrations", "billing", "tenants"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts or path == _THE_HOME:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _MAKES_TASKS.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, ("Tasks are made through crm.pipeline.services.task_create, or set-based through "
                       "tasks_create_sql (the INSERT text to embed in a job's statement):\n" + "\n".join(found))
    assert len(_MAKES_TASKS.findall(_THE_HOME.read_text(encoding="utf-8"))) >= 3  # the pattern does match
