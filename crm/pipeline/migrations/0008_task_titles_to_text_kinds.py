"""Tasks written before system titles had kinds: a title the old code rendered (in English or in
Chinese) gets its kind and params, so it is shown in each reader's language from now on. Titles
not recognised (typed by people, or changed since) keep their text. The reverse is a no-op: the
title column was never changed."""
from django.db import migrations

# Which system texts each kind of task may carry (the task's kind narrows what is tried).
CANDIDATES = {
    "call": ("new_lead", "low_survey_score"),
    "deposit_call": ("deposit_received",),
    "after_trip_call": ("after_trip_call",),
    "complaint": ("complaint_escalated", "complaint"),
    "visit": ("visit_slot",),
    "follow_up": ("visit_follow_up",),
    "approval": ("approval_decided",),
    "service_level": ("sla_breached", "sla_at_risk"),
    "tier_change": ("tier_changed",),
    "outreach": ("outreach",),
    "value_warning": ("value_spend_drop", "value_complaints", "value_dormant", "value_at_risk"),
    "greeting": ("greeting",),
    "suggestion": ("holiday_suggestion",),
    "win_back": ("win_back",),
    "referral": ("referral_reward",),
}


def recognise_titles(apps, schema_editor):
    from caravan.texts import recognise

    Task = apps.get_model("pipeline", "Task")
    for kind, candidates in CANDIDATES.items():
        rows = Task.objects.filter(kind=kind, text_kind="").only("pk", "title")
        if kind == "follow_up":
            rows = rows.filter(key__startswith="visit-follow-up:")
        changed = []
        for task in rows.iterator(chunk_size=2000):
            found = recognise(task.title, candidates)
            if found:
                task.text_kind, task.text_params = found
                changed.append(task)
        Task.objects.bulk_update(changed, ["text_kind", "text_params"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("pipeline", "0007_task_text_kind"),
    ]

    operations = [migrations.RunPython(recognise_titles, migrations.RunPython.noop)]
