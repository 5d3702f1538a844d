"""Re-encrypt everything kept with DOCUMENT_KEYS with the newest key: every agency's travel documents,
its website webhook secret and its own supplier-feed credentials, then the platform's shared
supplier-feed credentials.

Rotation: put a new key first in DOCUMENT_KEYS (keep the old ones after it), deploy, run this,
then drop the old keys. Each schema is done in its own transaction; re-running is harmless.
"""
from django.core.management import BaseCommand
from django.db import transaction
from django_tenants.utils import schema_context, tenant_context

from crm.checkout.models import StripeAccount
from crm.customers import crypto
from crm.customers.models import TravelDocument
from crm.documents import storage as document_scans
from crm.pipeline.models import IntakeSettings
from integrations.credentials.models import FeedCredential
from tenants.models import Agency


def _rotate_feed_credentials() -> int:
    """The feed credentials of the schema in use (``integrations.credentials``)."""
    rows = list(FeedCredential.objects.select_for_update())
    for row in rows:
        row.secret_encrypted = crypto.rotate(row.secret_encrypted) if row.secret_encrypted else ""
        row.push_secret_encrypted = crypto.rotate(row.push_secret_encrypted) if row.push_secret_encrypted else ""
    FeedCredential.objects.bulk_update(rows, ["secret_encrypted", "push_secret_encrypted"], batch_size=500)
    return len(rows)


class Command(BaseCommand):
    help = ("Re-encrypt travel document numbers, webhook secrets and supplier-feed credentials with the first "
            "key of DOCUMENT_KEYS.")

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
                feeds = _rotate_feed_credentials()
                for account in StripeAccount.objects.select_for_update():  # the agency's own Stripe keys
                    account.secret_key_encrypted = crypto.rotate(account.secret_key_encrypted)
                    account.webhook_secret_encrypted = crypto.rotate(account.webhook_secret_encrypted)
                    account.save(update_fields=["secret_key_encrypted", "webhook_secret_encrypted"])
                document_scans.rotate()  # the agency's data key for document scans (crm.documents)
            total += len(documents)
            self.stdout.write(f"{agency.slug}: {len(documents)} documents, {feeds} feed credentials re-encrypted")
        with schema_context("public"), transaction.atomic():
            feeds = _rotate_feed_credentials()
        self.stdout.write(f"platform: {feeds} shared feed credentials re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{total} documents and every feed credential now use the newest key."))
