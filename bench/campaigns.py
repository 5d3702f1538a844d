"""Sending a campaign of 10,000 personalised e-mails (R-CAMP-2).

    DATABASE_URL=…/caravan_bench .venv/bin/python -m infra.devenv bench campaigns

Uses the agency ``bench-crm`` of bench/customers.py (made with 100,000 people if missing).
1. Data, made once and kept idempotently with set-based SQL: BENCH_CAMPAIGN_RECIPIENTS (10,000)
   individuals with an e-mail address carry the tag ``bench-campaign`` and have marketing consent;
   a saved segment ``{"tags": ["bench-campaign"]}`` and a bilingual template with personal fields.
2. An SMTP server in this process (aiosmtpd, accepts and discards, like tests/conftest.py), and a
   new campaign to the segment, started with ``services.campaign_start`` (the audience snapshot).
3. The sending path timed as the worker runs it: ``sending.campaign_send`` called in this process
   (claims, consent re-check, rendering per language, one SMTP connection per batch, a committed
   mark per message, the timeline written per batch). The campaign's rate is set to 2,000/s so
   the throttle does not cap the figure. Target: >= 200 messages/s with one worker.
4. The campaign, its recipients and their timeline entries are deleted afterwards.
"""
import os
import sys
import threading
import time

RECIPIENTS = int(os.environ.get("BENCH_CAMPAIGN_RECIPIENTS", "10000"))
TAG = "bench-campaign"
TARGET = 200  # messages/s


def main() -> int:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caravan.settings")
    django.setup()
    from django.core.management import call_command
    from django_tenants.utils import tenant_context

    from bench.customers import SLUG
    from bench.customers import Bench as CustomerBench
    from tenants.models import Agency

    call_command("migrate_platform", verbosity=0)
    agency = Agency.objects.filter(slug=SLUG).first()
    base = CustomerBench()
    if agency is None:
        base.prepare()
        agency = base.agency
    with tenant_context(agency), Inbox() as inbox:
        bench = CampaignBench(base, agency, inbox)
        bench.data()
        bench.send()
    base.summary()
    return 0


class Inbox:
    """An SMTP server on a free port that accepts every message and keeps only a count."""

    def __init__(self):
        self.count, self.lock = 0, threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += len(envelope.rcpt_tos)
        return "250 OK"

    def __enter__(self):
        import logging
        import socket

        from aiosmtpd.controller import Controller
        from django.conf import settings

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
        self.controller = Controller(self, hostname="127.0.0.1", port=port)
        self.controller.start()
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        return self

    def __exit__(self, *exc):
        self.controller.stop()


class CampaignBench:
    def __init__(self, base, agency, inbox):
        self.base, self.agency, self.inbox = base, agency, inbox

    def data(self) -> None:
        from django.db import connection, transaction

        from crm.campaigns import services
        from crm.campaigns.models import Consent, EmailTemplate
        from crm.customers.models import Customer, Email
        from crm.segments.models import Segment

        C, E, K = Customer._meta.db_table, Email._meta.db_table, Consent._meta.db_table
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {C} WHERE %s = ANY(tags)", [TAG])
            if cursor.fetchone()[0] != RECIPIENTS:
                cursor.execute(f"UPDATE {C} SET tags = array_remove(tags, %s) WHERE %s = ANY(tags)", [TAG, TAG])
                cursor.execute(f"""
                    UPDATE {C} SET tags = array_append(tags, %s)
                    WHERE id IN (SELECT c.id FROM {C} c
                                 WHERE c.kind = 'person' AND c.merged_into_id IS NULL
                                   AND EXISTS (SELECT 1 FROM {E} e WHERE e.customer_id = c.id)
                                 ORDER BY c.id LIMIT %s)""", [TAG, RECIPIENTS])
            cursor.execute(f"""
                INSERT INTO {K} (customer_id, email_opt_in, opted_in_at, source, unsubscribed_at, bounced_at,
                                 bounce_reason, updated_at)
                SELECT id, true, now(), 'import', NULL, NULL, '', now() FROM {C} WHERE %s = ANY(tags)
                ON CONFLICT (customer_id) DO UPDATE SET email_opt_in = true, unsubscribed_at = NULL,
                                                        bounced_at = NULL, bounce_reason = ''""", [TAG])
        self.segment = Segment.objects.filter(name="Bench campaign audience").first() or Segment.objects.create(
            name="Bench campaign audience", definition={"tags": [TAG]})
        self.template = EmailTemplate.objects.filter(name="Bench campaign").first() or services.template_save(
            actor=None, name="Bench campaign",
            subject_zh="{{ first_name }}，五一假期去{{ last_destination|default:\"日本\" }}吧",
            body_zh="{{ name }} 您好，\n\n五一假期特惠：https://example.com/may-day?src=mail\n\n"
                    "您的顾问 {{ owner_name|default:\"我们\" }}\n{{ agency_name }}",
            subject_en="{{ first_name }}, May Day in {{ last_destination|default:\"Japan\" }}?",
            body_en="Dear {{ name }},\n\nMay Day offers: https://example.com/may-day?src=mail\n\n"
                    "{{ owner_name|default:\"Your consultant\" }}\n{{ agency_name }}")
        print(f"Campaign benchmark data: {RECIPIENTS:,} tagged customers with consent "
              f"({time.perf_counter() - started:.1f} s)", flush=True)

    def send(self) -> None:
        from crm.campaigns import sending, services
        from crm.campaigns.models import Campaign, Recipient
        from crm.customers.models import Contact

        campaign = services.campaign_save(actor=None, name=f"bench {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                          segment=self.segment, template=self.template, control_share=0,
                                          rate_per_second=2000)
        try:
            began = time.perf_counter()
            campaign = services.campaign_start(actor=None, campaign=campaign, queue=False)
            snapshot = time.perf_counter() - began
            recipients = Recipient.objects.filter(campaign=campaign).count()
            print(f"Audience snapshot (segment ∩ consent, INSERT … SELECT): {recipients:,} recipients in "
                  f"{snapshot:.2f} s", flush=True)
            self.base.record("audience snapshot (10,000 recipients)", snapshot, "s")
            began = time.perf_counter()
            counts = sending.campaign_send(campaign_id=campaign.pk, max_seconds=3600)
            seconds = time.perf_counter() - began
            rate = counts["sent"] / seconds
            campaign.refresh_from_db()
            print(f"Sent {counts['sent']:,} e-mails in {seconds:.1f} s = {rate:,.0f} messages/s; SMTP server "
                  f"received {self.inbox.count:,}; campaign {campaign.status}; {counts}", flush=True)
            assert self.inbox.count == counts["sent"] == recipients, "every recipient exactly once"
            assert Contact.objects.filter(pk__in=Recipient.objects.filter(campaign=campaign)
                                          .values("contact_id")).count() == recipients
            self.base.record("send 10,000 personalised e-mails (1 worker)", rate, "msg/s", f">= {TARGET} msg/s",
                             rate >= TARGET)
            self.base.notes.append(f"campaigns: {recipients:,} recipients, SMTP in process (aiosmtpd), "
                                   f"batches of {sending.BATCH}, {seconds:.1f} s")
        finally:
            contacts = list(Recipient.objects.filter(campaign=campaign, contact__isnull=False)
                            .values_list("contact_id", flat=True))
            Campaign.objects.filter(pk=campaign.pk).delete()
            Contact.objects.filter(pk__in=contacts).delete()


if __name__ == "__main__":
    sys.exit(main())
