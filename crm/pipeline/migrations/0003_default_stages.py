"""The default pipeline every agency starts with (names come from Stage.DEFAULT_NAMES, translated)."""
from django.db import migrations

DEFAULTS = [  # code, kind, position, probability
    ("new", "open", 10, 10),
    ("qualified", "open", 20, 25),
    ("quoted", "open", 30, 50),
    ("deposit", "deposit", 40, 80),
    ("won", "won", 50, 100),
    ("lost", "lost", 60, 0),
]


def seed(apps, schema_editor):
    Stage = apps.get_model("pipeline", "Stage")
    for code, kind, position, probability in DEFAULTS:
        Stage.objects.get_or_create(code=code, defaults={"kind": kind, "position": position, "probability": probability})


class Migration(migrations.Migration):
    dependencies = [("pipeline", "0002_task_trip")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
