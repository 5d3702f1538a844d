"""Import jobs written before row errors had kinds: an error message the old code wrote (in English
or in Chinese) gets its kind and params (``caravan.texts``), so it reads in each reader's language.
Messages not recognised keep their text. The reverse is a no-op: the message was never changed."""
from django.db import migrations


def recognise_errors(apps, schema_editor):
    from caravan.texts import KINDS, recognise

    kinds = [kind for kind in KINDS if kind.startswith("import_")]
    ImportJob = apps.get_model("crm", "ImportJob")
    for job in ImportJob.objects.exclude(errors=[]).only("pk", "errors").iterator(chunk_size=100):
        changed = False
        for error in job.errors or []:
            if not isinstance(error, dict) or error.get("text_kind") or not error.get("message"):
                continue
            found = recognise(error["message"], kinds)
            if found:
                error["text_kind"], error["text_params"] = found
                changed = True
        if changed:
            ImportJob.objects.filter(pk=job.pk).update(errors=job.errors)


class Migration(migrations.Migration):

    dependencies = [("crm", "0006_search_text_cjk_spaces")]

    operations = [migrations.RunPython(recognise_errors, migrations.RunPython.noop)]
