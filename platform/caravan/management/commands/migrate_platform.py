"""Bring every schema up to date: public first, then the template, then all agencies in parallel.

This is the one migration command to run on deploy (see docs/operations.md, "Rolling out
migrations"). Agencies are migrated with django-tenants' multiprocessing executor
(TENANT_MIGRATION_EXECUTOR / TENANT_MIGRATION_PROCESSES).
"""
import time

from django.conf import settings
from django.core.management import BaseCommand, call_command

from tenants.models import Agency
from tenants.schemas import migrate_template
from tenants.services import platform_ensure


class Command(BaseCommand):
    help = "Migrate the public schema, the agency template schema and every agency schema."

    def handle(self, *args, verbosity=1, **options):
        started = time.monotonic()
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
        platform_ensure()
        migrate_template(verbosity=verbosity)
        count = Agency.objects.agencies().count()
        if count:
            call_command("migrate_schemas", tenant=True, executor=settings.TENANT_MIGRATION_EXECUTOR,
                         interactive=False, verbosity=verbosity)
        self.stdout.write(f"Migrated public, template and {count} agencies in {time.monotonic() - started:.1f}s")
