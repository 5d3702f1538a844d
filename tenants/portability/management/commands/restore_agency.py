"""Restore an agency export (docs/portability.md) as a new agency, or over a deleted one's slug."""
from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError

from tenants.portability.services import restore_archive


class Command(BaseCommand):
    help = "Restore an agency export archive into a new agency (a new slug, or the slug of a deleted agency)."

    def add_arguments(self, parser):
        parser.add_argument("archive", help="Path of the export archive (.zip).")
        parser.add_argument("--slug", required=True, help="Slug of the agency to create.")
        parser.add_argument("--name", default="", help="Agency name (default: the name in the archive).")
        parser.add_argument("--actor", default="restore_agency command", help="Recorded in the agency's history.")
        parser.add_argument("--trust-unsigned", action="store_true",
                            help="Restore an archive this platform did not sign (made by another Caravan platform).")

    def handle(self, *args, archive, slug, name, actor, trust_unsigned, **options):
        def progress(done, total):
            if options["verbosity"] > 1:
                self.stdout.write(f"{done}/{total} tables")

        try:
            agency = restore_archive(archive, slug=slug, name=name, actor=actor, on_table=progress,
                                     trust_unsigned=trust_unsigned)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(self.style.SUCCESS(f"Agency {agency.slug} restored: {agency.url()}"))
