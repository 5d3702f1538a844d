"""A check for the tests of jobs that make tasks set-based (``crm.pipeline.services.tasks_create_sql``)."""
from crm.pipeline.models import Task
from crm.pipeline.services import task_create

FIELDS = ("title", "kind", "notes", "owner_id", "customer_id", "opportunity_id", "trip_id", "due_at", "remind_at",
          "reminded_at", "done_at", "done_by_id", "created_by_id")


def task_fields(task: Task) -> dict:
    return {field: getattr(task, field) for field in FIELDS}


def assert_made_as_task_create(task: Task) -> None:
    """``task``, made by a job, is what ``task_create`` makes from the same inputs (given untrimmed,
    as a form would), and shares its key: ``task_create`` with the job's key hands back the job's
    task unchanged and makes nothing."""
    task = Task.objects.get(pk=task.pk)
    made, count = task_fields(task), Task.objects.count()
    inputs = dict(actor=None, kind=task.kind, owner=task.owner, customer=task.customer, trip=task.trip,
                  due_at=task.due_at)
    again = task_create(**inputs, title="other", notes="other", key=task.key)
    assert again.pk == task.pk and Task.objects.count() == count
    assert task_fields(Task.objects.get(pk=task.pk)) == made
    by_hand = task_create(**inputs, title=f"  {task.title}\n", notes=f" {task.notes} ", key=f"by-hand:{task.pk}")
    assert task_fields(by_hand) == made
    by_hand.delete()
