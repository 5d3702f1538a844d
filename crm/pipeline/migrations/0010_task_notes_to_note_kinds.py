"""Task notes the system wrote before they had kinds: notes the old code rendered (in English or in
Chinese) get their kind and params, so they are shown in each reader's language from now on. Notes
not recognised (typed by people, or changed since) keep their text. The reverse is a no-op: the
notes column was never changed."""
from django.db import migrations

# Which system notes each kind of task may carry (the task's kind narrows what is tried).
CANDIDATES = {
    "call": ("survey_answered",),
    "approval": ("approval_decided_note",),
    "service_level": ("sla_note",),
    "tier_change": ("tier_change_note",),
    "outreach": ("outreach_note",),
    "greeting": ("greeting_both_note", "greeting_no_mail_note", "greeting_task_note"),
    "win_back": ("win_back_dormant_note", "win_back_declining_note"),
    "referral": ("referral_note",),
    "suggestion": ("suggestion_note",),
}


def recognise_notes(apps, schema_editor):
    from caravan.texts import recognise

    Task = apps.get_model("pipeline", "Task")
    for kind, candidates in CANDIDATES.items():
        rows = Task.objects.filter(kind=kind, note_kind="").exclude(notes="").only("pk", "notes")
        if kind == "call":
            rows = rows.filter(key__startswith="low-score:")
        changed = []
        for task in rows.iterator(chunk_size=2000):
            found = recognise(task.notes, candidates)
            if found:
                task.note_kind, task.note_params = found
                changed.append(task)
        Task.objects.bulk_update(changed, ["note_kind", "note_params"], batch_size=1000)


class Migration(migrations.Migration):

    dependencies = [
        ("pipeline", "0009_task_note_kind"),
    ]

    operations = [migrations.RunPython(recognise_notes, migrations.RunPython.noop)]
