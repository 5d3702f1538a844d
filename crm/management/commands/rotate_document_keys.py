"""Re-encrypt every agency's travel documents (and its website webhook secret) with the newest key
in DOCUMENT_KEYS.

Rotation: put a new key first in DOCUMENT_KEYS (keep the old ones after it), deploy, run this,
then drop the old keys. Each agency is done in its own transaction; re-running is harmless.
"""
from django.core.management import BaseCommand
from django.db import transaction
from django_tenants.utils import tenant_context

from crm import crypto
from crm.models import TravelDocument
from crm.pipeline.models import IntakeSettings
from tenants.models import Agency


class Command(BaseCommand):
    help = "Re-encrypt all travel document numbers and webhook secrets with the first key of DOCUMENT_KEYS."

    def handle(self, *args, **options):
        total = 0
        for agency in Agency.objects.agencies():
            with tenant_context(agency), transaction.atomic():
                documents = list(TravelDocument.objects.select_for_update().only("pk", "number_encrypted"))
                for document in documents:
                    document.number_encrypted = crypto.rotate(document.number_encrypted)
                TravelDocument.objects.bulk_update(documents, ["number_encrypted"], batch_size=500)
                for intake in IntakeSettings.objects.select_for_update().exclude(webhook_secret=b""):
                    intake.webhook_secret = crypto.rotate(bytes(intake.webhook_secret).decode()).encode()
                    intake.save(update_fields=["webhook_secret"])
            total += len(documents)
            self.stdout.write(f"{agency.slug}: {len(documents)} documents re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{total} documents now use the newest key."))
