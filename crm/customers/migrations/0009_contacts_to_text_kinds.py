"""Timeline entries written by the system before they had kinds (a survey sent or answered, a
complaint logged, moved, reassigned or escalated, a payment recorded, a policy check or decision,
a win-back, greeting or referral note):
an entry the old code rendered (in English or in Chinese) gets its kind and params (``caravan.texts``),
so it reads in each reader's language. Entries not recognised (written by people, or with lines
added: a resolution) keep their text. The reverse is a no-op: the summary was never changed."""
from django.db import migrations
from django.utils import translation

CANDIDATES = {
    "survey": ("survey_answered", "survey_sent"),
    "complaint": ("complaint_logged", "complaint_moved", "complaint_reassigned", "complaint_passed_deadline"),
    "trip": ("payment_recorded", "policy_check_in", "policy_check_forbidden", "policy_check_approval",
             "approval_decided_note"),
    "note": ("won_back_note", "greeting_note", "referral_rewarded", "win_back_reason", "win_back_offer",
             "win_back_lost"),
}


def recognise_contacts(apps, schema_editor):
    from caravan.texts import WRITTEN_IN, recognise

    unnamed = set()  # "the approver": a word, not data; such an entry keeps its text
    for language in WRITTEN_IN:
        with translation.override(language):
            unnamed.add(translation.gettext("the approver"))
    Contact = apps.get_model("crm", "Contact")
    for channel, candidates in CANDIDATES.items():
        changed = []
        for contact in Contact.objects.filter(channel=channel, text_kind="").only("pk", "summary").iterator(
                chunk_size=2000):
            found = recognise(contact.summary, candidates)
            if not found or found[1].get("who") in unnamed:
                continue
            contact.text_kind, contact.text_params = found
            changed.append(contact)
            if len(changed) >= 1000:
                Contact.objects.bulk_update(changed, ["text_kind", "text_params"])
                changed = []
        Contact.objects.bulk_update(changed, ["text_kind", "text_params"])


class Migration(migrations.Migration):

    dependencies = [("crm", "0008_contact_text_kind")]

    operations = [migrations.RunPython(recognise_contacts, migrations.RunPython.noop)]
