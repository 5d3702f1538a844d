from django.core.exceptions import ValidationError
from django.core.management import BaseCommand, CommandError

from tenants.models import Agency
from tenants.services import agency_onboard


class Command(BaseCommand):
    help = "Onboard an agency in one step: schema, domain <slug>.<PLATFORM_DOMAIN>, first admin invitation."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--slug", required=True)
        parser.add_argument("--plan", default=Agency.Plan.STARTER, help="a plan code on offer")
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-name", default="")
        parser.add_argument("--language", default="zh-hans", choices=["zh-hans", "en"])

    def handle(self, *args, **o):
        try:
            result = agency_onboard(name=o["name"], slug=o["slug"], plan=o["plan"], admin_email=o["admin_email"],
                                    admin_name=o["admin_name"], language=o["language"], actor="manage.py")
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))
        self.stdout.write(self.style.SUCCESS(f"Agency {result.agency.name} is at {result.agency.url()}"))
        self.stdout.write(f"Invitation for {result.admin_email}: {result.invitation_url}")
