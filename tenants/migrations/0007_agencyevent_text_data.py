"""Events written before notes had kinds (plain English like "plan=pro admin=a@b.test", "trial extended by
14 days"): read back into kind + params, so the console shows them in the reader's language. A note not
recognised keeps its text; the reverse leaves the kinds (the text is still there)."""
import re

from django.db import migrations

SHAPES = [  # (event kinds it may belong to, pattern, text kind)
    (None, re.compile(r"^plan=(?P<plan>\S*) admin=(?P<admin>.*)$"), "agency_onboarded"),
    (None, re.compile(r"^comped(?:: (?P<note>.*))?$", re.S), "agency_comped"),
    (None, re.compile(r"^comp withdrawn(?:: (?P<note>.*))?$", re.S), "agency_comp_withdrawn"),
    (None, re.compile(r"^trial extended by (?P<days>\d+) days$"), "agency_trial_extended"),
    (None, re.compile(r"^credit (?P<amount>[\d.]+) (?P<currency>[A-Z]{3}) on the next invoice: (?P<reason>.*)$", re.S),
     "agency_credit"),
    (None, re.compile(r"^Stripe status (?P<from>\S+) → (?P<to>\S+)$"), "agency_stripe_status"),
    (("export_requested", "export_downloaded"), re.compile(r"^(?P<id>\d+)$"), "agency_export"),
    (None, re.compile(r"^from the export of (?P<slug>\S+) made (?P<at>.+)$"), "agency_restored"),
    (("deletion_scheduled",), re.compile(r"^due (?P<due>\d{4}-\d{2}-\d{2})\.?\s*(?P<note>.*)$", re.S), "agency_deletion_due"),
    (("settings_changed",), re.compile(r"^(?P<fields>[a-z_]+(?:, [a-z_]+)*)$"), "agency_settings"),
]


def recognise(apps, schema_editor):
    AgencyEvent = apps.get_model("tenants", "AgencyEvent")
    events = AgencyEvent._base_manager  # plain rows: the live model's manager is fenced by agency
    for event in events.filter(text_kind="").exclude(note="").iterator(chunk_size=500):
        for kinds, pattern, text_kind in SHAPES:
            if kinds and event.kind not in kinds:
                continue
            match = pattern.match(event.note)
            if match:
                params = {k: v or "" for k, v in match.groupdict().items()}
                if text_kind in ("agency_comped", "agency_comp_withdrawn", "agency_deletion_due"):
                    params.setdefault("note", "")
                events.filter(pk=event.pk).update(text_kind=text_kind, text_params=params)
                break


class Migration(migrations.Migration):

    dependencies = [("tenants", "0006_agencyevent_text")]

    operations = [migrations.RunPython(recognise, migrations.RunPython.noop)]
