"""Give agencies a new data key for their document scans and re-encrypt every scan with it (crm.documents.storage.rekey).

Not needed to retire a master key (``rotate_document_keys`` re-wraps the data keys); this is for a data key
that may have leaked. ``--agency <slug>`` for one agency; re-running is harmless.
"""
from django.core.management import BaseCommand
from django_tenants.utils import tenant_context

from crm.documents import storage
from tenants.models import Agency


class Command(BaseCommand):
    help = "Make a new data key per agency for document scans and re-encrypt every scan with it."

    def add_arguments(self, parser):
        parser.add_argument("--agency", help="only this agency (its slug)")

    def handle(self, *args, agency=None, **options):
        agencies = Agency.objects.agencies()
        if agency:
            agencies = agencies.filter(slug=agency)
        for row in agencies:
            with tenant_context(row):
                done = storage.rekey()
            self.stdout.write(f"{row.slug}: {done} document scans re-encrypted with a new data key")
