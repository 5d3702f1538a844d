"""E-mail campaigns (R-CAMP-2, R-CAMP-3): templates and personal fields, the audience snapshot and
the control group, sending over real SMTP (languages, headers, consent re-checked, bounces,
throttling, timeline), an interrupted send resuming without double sends, unsubscribe / open / click
links without sign-in, scheduling and the minute job, the effect and its attribution-window edges,
pages, API, demo data, and the fence between agencies."""
import socket
import time
from datetime import timedelta
from decimal import Decimal
from email.header import decode_header, make_header

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.campaigns import consent, links, rendering, selectors, sending, services
from crm.campaigns.models import Campaign, Consent, EmailTemplate, Recipient
from crm.customers.models import ChangeLog, Contact, Customer, Email
from crm.pipeline.models import Opportunity, Stage
from crm.segments.models import Segment
from crm.trips.models import ItineraryItem, Trip

from .conftest import staff

pytestmark = pytest.mark.django_db

BODY_ZH = "{{ name }} 您好，樱花季到了。上次您去了{{ last_destination|default:\"远方\" }}。\n详情：https://example.com/sakura?x=1&y=2。\n{{ agency_name }}"
BODY_EN = "Dear {{ first_name }},\n\nCherry blossoms! See https://example.com/sakura?x=1&y=2 and (https://example.com/faq).\n{{ owner_name|default:\"Us\" }}"


# --- helpers --------------------------------------------------------------------------------------

def people(n: int, *, prefix: str = "客户", opt_in: bool = True, language: str | None = None,
           email: bool = True) -> list[Customer]:
    """``n`` individual customers (alternating Chinese and English unless ``language``), with an
    address and, if ``opt_in``, marketing consent. Bulk-written: run inside ``tenant_context``."""
    made = Customer.objects.bulk_create([
        Customer(name=f"{prefix}{i}", kind=Customer.Kind.PERSON, latin_given=f"Given{i}" if i % 2 else "",
                 language=language or ("zh-hans" if i % 2 == 0 else "en")) for i in range(n)])
    if email:
        Email.objects.bulk_create([Email(customer=c, address=f"c-{c.pk}@example.cn") for c in made])
    if opt_in:
        Consent.objects.bulk_create([Consent(customer=c, email_opt_in=True, opted_in_at=timezone.now(), source="form")
                                     for c in made])
    return made


def template(**fields) -> EmailTemplate:
    values = {"name": "Sakura", "subject_zh": "{{ name }}，去看樱花吧", "body_zh": BODY_ZH,
              "subject_en": "{{ first_name }}, cherry blossoms", "body_en": BODY_EN}
    values.update(fields)
    return services.template_save(actor=None, **values)


def campaign(*, name="Spring", control_share=0, definition=None, tmpl=None, **fields) -> Campaign:
    segment = Segment.objects.create(name=f"Segment {name}", definition=definition or {"kind": "person"})
    return services.campaign_save(actor=None, name=name, segment=segment, template=tmpl or template(name=f"T {name}"),
                                  control_share=control_share, **fields)


def started(**fields) -> Campaign:
    return services.campaign_start(actor=None, campaign=campaign(**fields))


def subject_of(message) -> str:
    return str(make_header(decode_header(message["Subject"])))


def parts(message) -> tuple[str, str]:
    text = html = ""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            text = part.get_payload(decode=True).decode()
        elif part.get_content_type() == "text/html":
            html = part.get_payload(decode=True).decode()
    return text, html


def to_of(message) -> str:
    return message["To"]


class _Server:
    """A real SMTP server (aiosmtpd) whose answers a test decides: refuse some recipients, or fail
    every message after the first ``fail_after``."""

    def __init__(self, fail_after=None):
        self.fail_after, self.accepted = fail_after, []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce"):
            return "550 5.1.1 <%s>: user unknown" % address
        if address.startswith("busy"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.fail_after is not None and len(self.accepted) >= self.fail_after:
            return "421 4.3.0 server going down"
        self.accepted.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def smtp(settings):
    """``smtp(fail_after=None)``: start an SMTP server of the test's own and point Django at it."""
    from aiosmtpd.controller import Controller

    controllers = []

    def start(**kwargs):
        handler = _Server(**kwargs)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
        return handler

    yield start
    for controller in controllers:
        controller.stop()


# --- templates ------------------------------------------------------------------------------------

def test_templates_allow_known_personal_fields_only(alpha):
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as caught:
            services.template_save(actor=None, name=" ", subject_zh="{{ nickname }}你好", body_zh="{% if x %}hi{% endif %}",
                                   subject_en="Hello {{ name", body_en="")
        errors = caught.value.message_dict
        assert set(errors) == {"name", "subject_zh", "body_zh", "subject_en", "body_en"}
        assert "nickname" in errors["subject_zh"][0] and "{{ first_name }}" in errors["subject_zh"][0]
        assert "not a personal field" in errors["body_zh"][0]
        with pytest.raises(ValidationError) as caught:
            services.template_save(actor=None, name="Empty")
        assert "at least one language" in caught.value.message_dict["subject_zh"][0]
        made = template(subject_en="", body_en="")
        assert list(made.content()) == ["zh-hans"]
        with pytest.raises(ValidationError) as caught:
            template(name="Sakura")
        assert "name" in caught.value.message_dict


def test_rendering_is_plain_substitution_and_escaped_in_html():
    values = {"name": "<b>王芳</b> & Co", "first_name": "Fang", "owner_name": "", "last_destination": "",
              "agency_name": "Alpha"}
    assert rendering.render("{{ name }}|{{ owner_name|default:\"我们\" }}|{{ last_destination }}", values) \
        == "<b>王芳</b> & Co|我们|"
    assert rendering.subject_line("Hi {{ first_name }}\r\nBcc: x@y", values) == "Hi Fang Bcc: x@y"
    assert rendering.template_links(BODY_EN + " https://example.com/sakura?x=1&y=2 {{ name }}https://x.cn/{{ name }}") \
        == ["https://example.com/sakura?x=1&y=2", "https://example.com/faq"]
    assert rendering.template_links(BODY_ZH) == ["https://example.com/sakura?x=1&y=2"]  # full-width 。 not taken
    html = rendering.html_body(rendering.render("Hi {{ name }}\nhttps://example.com/a.", values),
                               tracked={"https://example.com/a": "https://alpha/c/l/t/"}, footer_html="f",
                               pixel_url="https://alpha/c/o/p/")
    assert "&lt;b&gt;王芳&lt;/b&gt; &amp; Co" in html and "<b>王芳" not in html
    assert '<a href="https://alpha/c/l/t/">https://example.com/a</a>.' in html and 'src="https://alpha/c/o/p/"' in html
    assert rendering.first_name("王芳", "") == "王芳" and rendering.first_name("John Smith", "") == "John"
    assert rendering.first_name("王芳", "fang ling") == "Fang"


# --- the start: audience and control group --------------------------------------------------------

def test_start_takes_the_emailable_audience_and_an_exact_random_control_group(alpha):
    with tenant_context(alpha):
        mailable = people(200)
        people(5, prefix="nope", opt_in=False)
        people(3, prefix="noaddr", email=False)
        gone = people(4, prefix="gone")
        consent.unsubscribe(gone[0])
        consent.bounced(gone[1], reason="550")
        Customer.objects.filter(pk=gone[2].pk).update(merged_into=mailable[0])
        consent.consent_set(gone[3], opt_in=False)
        company = Customer.objects.create(name="ACME", kind=Customer.Kind.COMPANY)
        Email.objects.create(customer=company, address="acme@example.cn")
        Consent.objects.create(customer=company, email_opt_in=True)

        made = started(control_share=15)
        rows = Recipient.objects.filter(campaign=made)
        assert made.status == Campaign.Status.SENDING and made.started_at and made.definition == {"kind": "person"}
        assert set(rows.values_list("customer_id", flat=True)) == {c.pk for c in mailable}
        assert rows.filter(group="control").count() == 30  # exactly 15 % of 200
        assert set(rows.filter(group="control").values_list("status", flat=True)) == {"held"}
        assert set(rows.filter(group="send").values_list("status", flat=True)) == {"pending"}
        one = rows.get(customer=mailable[7])
        assert one.email == mailable[7].emails.get().address and one.language == "en"
        assert made.content["zh-hans"]["links"] == ["https://example.com/sakura?x=1&y=2"]
        # The draw is seeded by the campaign: the same campaign draws the same group, another one not.
        control = set(rows.filter(group="control").values_list("customer_id", flat=True))
        with pytest.raises(ValidationError):
            services.campaign_start(actor=None, campaign=made)  # only once
        other = started(name="Other", control_share=15)
        other_control = set(Recipient.objects.filter(campaign=other, group="control").values_list("customer_id", flat=True))
        assert len(other_control) == 30 and other_control != control
        # Changing the segment or template afterwards changes nothing of a started campaign.
        Segment.objects.filter(pk=made.segment_id).update(definition={"kind": "company"})
        EmailTemplate.objects.filter(pk=made.template_id).update(subject_en="Changed")
        made.refresh_from_db()
        assert made.definition == {"kind": "person"} and made.content["en"]["subject"] == "{{ first_name }}, cherry blossoms"


def test_a_campaign_with_nobody_to_mail_is_finished_at_once(alpha):
    with tenant_context(alpha):
        people(2, opt_in=False)
        made = started(control_share=50)
        assert made.status == Campaign.Status.SENT and not made.recipients.exists()


# --- sending --------------------------------------------------------------------------------------

def test_sending_mails_the_send_group_once_each_in_their_language(alpha, mailbox):
    with tenant_context(alpha):
        customers = people(20)
        Customer.objects.filter(pk=customers[0].pk).update(owner=staff(alpha, "sales"))
        made = started(control_share=20, from_name="阿尔法旅行", reply_to="service@alpha.example")
        counts = sending.campaign_send(campaign_id=made.pk)
        made.refresh_from_db()
        send_rows = Recipient.objects.filter(campaign=made, group="send")
        control_emails = set(Recipient.objects.filter(campaign=made, group="control").values_list("email", flat=True))
        assert counts == {"sent": 16, "skipped": 0, "bounced": 0, "failed": 0, "done": True}
        assert made.status == Campaign.Status.SENT and made.finished_at
        assert sorted(to_of(m) for m in mailbox) == sorted(send_rows.values_list("email", flat=True))
        assert not control_emails & {to_of(m) for m in mailbox}
        assert set(send_rows.values_list("status", flat=True)) == {"sent"} and not send_rows.filter(sent_at=None).exists()
        by_address = {to_of(m): m for m in mailbox}
        zh = send_rows.filter(language="zh-hans").select_related("customer").first()
        en = send_rows.filter(language="en").select_related("customer").first()
        zh_message, en_message = by_address[zh.email], by_address[en.email]
        assert subject_of(zh_message) == f"{zh.customer.name}，去看樱花吧"
        assert subject_of(en_message) == f"{en.customer.latin_given}, cherry blossoms"
        assert "阿尔法旅行" in str(make_header(decode_header(zh_message["From"])))
        assert zh_message["Reply-To"] == "service@alpha.example"
        text, html = parts(zh_message)
        base = alpha.url("").rstrip("/")
        unsubscribe = f"{base}/c/u/{links.make(links.UNSUBSCRIBE, zh.pk)}/"
        assert zh_message["List-Unsubscribe"].replace("\r\n", "").strip() == f"<{unsubscribe}>"
        assert zh_message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe in text and unsubscribe in html and "远方" in text and "https://example.com/sakura?x=1&y=2" in text
        click = f"{base}/c/l/{links.make(links.CLICK, zh.pk, 0)}/"
        assert f'<a href="{click}">https://example.com/sakura?x=1&amp;y=2</a>' in html
        assert f"{base}/c/o/{links.make(links.OPEN, zh.pk)}/" in html
        # The timeline: one outbound e-mail per mailed customer, none for the control group.
        contacts = Contact.objects.filter(channel=Contact.Channel.EMAIL, direction=Contact.Direction.OUTBOUND)
        assert contacts.count() == 16 and set(contacts.values_list("customer_id", flat=True)) == set(
            send_rows.values_list("customer_id", flat=True))
        assert "Spring" in contacts.first().summary and set(send_rows.values_list("contact_id", flat=True)) == set(
            contacts.values_list("pk", flat=True))
        # Running again sends nothing more.
        assert sending.campaign_send(campaign_id=made.pk)["sent"] == 0 and len(mailbox) == 16


def test_consent_is_checked_again_just_before_sending(alpha, mailbox):
    with tenant_context(alpha):
        customers = people(6)
        made = started()
        consent.unsubscribe(customers[1])
        consent.bounced(customers[2], reason="550 gone")
        Email.objects.filter(customer=customers[3]).update(address="changed@example.cn")
        counts = sending.campaign_send(campaign_id=made.pk)
        assert (counts["sent"], counts["skipped"]) == (3, 3)
        assert {to_of(m) for m in mailbox} == set(Recipient.objects.filter(campaign=made, status="sent")
                                                   .values_list("email", flat=True))
        assert Recipient.objects.filter(campaign=made, status="skipped").count() == 3
        assert not Contact.objects.filter(customer__in=customers[1:4], channel="email").exists()


def test_smtp_refusals_bounce_or_fail_the_recipient_only(alpha, smtp):
    server = smtp()
    with tenant_context(alpha):
        customers = people(4)
        Email.objects.filter(customer=customers[1]).update(address="bounce-1@example.cn")
        Email.objects.filter(customer=customers[2]).update(address="busy-2@example.cn")
        made = started()
        counts = sending.campaign_send(campaign_id=made.pk)
        assert (counts["sent"], counts["bounced"], counts["failed"]) == (2, 1, 1)
        bounced_row = Recipient.objects.get(campaign=made, customer=customers[1])
        assert bounced_row.status == "bounced" and bounced_row.error.startswith("550") and bounced_row.bounced_at
        assert Recipient.objects.get(campaign=made, customer=customers[2]).status == "failed"
        assert Consent.objects.get(customer=customers[1]).bounced_at is not None
        assert not consent.may_email(customers[1]) and consent.may_email(customers[2])
        assert sorted(server.accepted) == sorted(Email.objects.filter(customer__in=[customers[0], customers[3]])
                                                 .values_list("address", flat=True))
        results = selectors.campaign_results(made)
        assert (results.sent, results.bounced, results.delivered, results.failed) == (2, 1, 2, 1)


def test_an_interrupted_send_resumes_without_sending_anyone_twice(alpha, smtp):
    flaky = smtp(fail_after=7)
    with tenant_context(alpha):
        people(25)
        made = started(control_share=20)  # 20 to mail
        with pytest.raises(sending.SendInterrupted):
            sending.campaign_send(campaign_id=made.pk, batch_size=10)
        rows = Recipient.objects.filter(campaign=made, group="send")
        assert rows.filter(status="sent").count() == 7 == len(flaky.accepted)
        assert set(rows.filter(status="sent").values_list("email", flat=True)) == set(flaky.accepted)
        assert not rows.filter(status="pending", claimed_at__isnull=False).exists()  # claims released
        made.refresh_from_db()
        assert made.status == Campaign.Status.SENDING

        healthy = smtp()  # the server is back: the next run sends the rest, nobody twice
        counts = sending.campaign_send(campaign_id=made.pk, batch_size=10)
        assert counts["sent"] == 13 and counts["done"]
        assert not set(healthy.accepted) & set(flaky.accepted)
        assert sorted(healthy.accepted + flaky.accepted) == sorted(rows.values_list("email", flat=True))
        assert Contact.objects.filter(channel="email").count() == 20
        made.refresh_from_db()
        assert made.status == Campaign.Status.SENT


def test_a_dead_workers_claims_are_taken_over_after_the_lease_and_sent_rows_never_again(alpha, mailbox):
    with tenant_context(alpha):
        people(12)
        made = started()
        rows = list(Recipient.objects.filter(campaign=made).order_by("id"))
        # A worker marked 3 rows sent, claimed 4 more and died.
        Recipient.objects.filter(pk__in=[r.pk for r in rows[:3]]).update(status="sent", sent_at=timezone.now())
        Recipient.objects.filter(pk__in=[r.pk for r in rows[3:7]]).update(claimed_at=timezone.now())
        counts = sending.campaign_send(campaign_id=made.pk)
        assert counts["sent"] == 5 and {to_of(m) for m in mailbox} == {r.email for r in rows[7:]}
        made.refresh_from_db()
        assert made.status == Campaign.Status.SENDING  # claimed rows still pending
        Recipient.objects.filter(pk__in=[r.pk for r in rows[3:7]]).update(
            claimed_at=timezone.now() - sending.CLAIM_LEASE - timedelta(seconds=1))
        counts = sending.campaign_send(campaign_id=made.pk)
        assert counts["sent"] == 4 and len(mailbox) == 9 and len({to_of(m) for m in mailbox}) == 9
        assert not {r.email for r in rows[:3]} & {to_of(m) for m in mailbox}
        made.refresh_from_db()
        assert made.status == Campaign.Status.SENT
        # The timeline covers the rows the dead worker marked too.
        assert Contact.objects.filter(channel="email").count() == 12


def test_a_run_stops_at_its_limit_and_the_next_run_continues(alpha, mailbox):
    with tenant_context(alpha):
        people(9)
        made = started()
        first = sending.campaign_send(campaign_id=made.pk, max_messages=4, batch_size=3)
        assert first["sent"] == 4 and first["done"] is False and len(mailbox) == 4
        second = sending.campaign_send(campaign_id=made.pk)
        assert second["sent"] == 5 and second["done"] and len({to_of(m) for m in mailbox}) == 9


def test_sending_is_throttled_to_the_campaigns_rate(alpha, mailbox):
    with tenant_context(alpha):
        people(11)
        made = started(rate_per_second=20)
        began = time.monotonic()
        assert sending.campaign_send(campaign_id=made.pk)["sent"] == 11
        assert time.monotonic() - began >= 0.5  # 11 messages at 20/s: at least 10 intervals of 50 ms


def test_cancelling_stops_a_send(alpha, mailbox):
    with tenant_context(alpha):
        people(6)
        made = started()
        services.campaign_cancel(actor=None, campaign=made)
        assert sending.campaign_send(campaign_id=made.pk)["sent"] == 0 and not mailbox
        assert set(Recipient.objects.filter(campaign=made).values_list("status", flat=True)) == {"skipped"}
        with pytest.raises(ValidationError):
            services.campaign_cancel(actor=None, campaign=made)


# --- the public links -----------------------------------------------------------------------------

def test_unsubscribe_link_works_without_signing_in_and_is_honoured(alpha, mailbox, page_client):
    with tenant_context(alpha):
        customers = people(3)
        made = started()
        sending.campaign_send(campaign_id=made.pk)
        row = Recipient.objects.get(campaign=made, customer=customers[0])
        token = links.make(links.UNSUBSCRIBE, row.pk)
        other = Recipient.objects.get(campaign=made, customer=customers[1])
        other_token = links.make(links.UNSUBSCRIBE, other.pk)
    anonymous = page_client("alpha")
    page = anonymous.get(f"/c/u/{token}/")
    assert page.status_code == 200 and 'data-test="confirm-unsubscribe"' in page.content.decode()
    with tenant_context(alpha):
        assert consent.may_email(customers[0])  # a GET (link scanners) changes nothing
    done = anonymous.post(f"/c/u/{token}/")
    assert done.status_code == 200 and 'data-test="unsubscribed"' in done.content.decode()
    # One-click unsubscribe from the mail program (RFC 8058): a POST without a CSRF token.
    from django.test import Client

    strict = Client(HTTP_HOST="alpha.localhost", enforce_csrf_checks=True)
    assert strict.post(f"/c/u/{other_token}/", {"List-Unsubscribe": "One-Click"}).status_code == 200
    with tenant_context(alpha):
        assert not consent.may_email(customers[0]) and not consent.may_email(customers[1])
        assert Recipient.objects.get(pk=row.pk).unsubscribed_at is not None
        assert selectors.campaign_results(made).unsubscribed == 2
        assert consent.may_email(customers[2])
        later = started(name="Later")  # the next campaign leaves them out
        assert set(later.recipients.values_list("customer_id", flat=True)) == {customers[2].pk}
    assert anonymous.get(f"/c/u/{token}/").content.decode().count('data-test="unsubscribed"') == 1
    assert anonymous.get(f"/c/u/{token}x/").status_code == 404
    assert anonymous.get("/c/u/test/").status_code == 404
    assert page_client("bravo").get(f"/c/u/{token}/").status_code == 404  # another agency's host
    assert page_client("bravo").post(f"/c/u/{token}/").status_code == 404
    assert page_client(None).get(f"/c/u/{token}/").status_code == 404  # the platform domain


def test_open_pixel_and_clicks_are_recorded_and_redirect_only_to_the_campaigns_links(alpha, bravo, mailbox, page_client):
    with tenant_context(alpha):
        customers = people(2, language="en")
        made = started()
        sending.campaign_send(campaign_id=made.pk)
        row = Recipient.objects.get(campaign=made, customer=customers[0])
        opened, first, second, beyond = (links.make(links.OPEN, row.pk), links.make(links.CLICK, row.pk, 0),
                                         links.make(links.CLICK, row.pk, 1), links.make(links.CLICK, row.pk, 2))
    client = page_client("alpha")
    pixel = client.get(f"/c/o/{opened}/")
    assert pixel.status_code == 200 and pixel["Content-Type"] == "image/gif" and pixel.content.startswith(b"GIF89a")
    with tenant_context(alpha):
        row.refresh_from_db()
        assert row.opened_at and not row.clicked_at
        first_open = row.opened_at
    assert client.get(f"/c/o/{opened}/").status_code == 200
    redirect = client.get(f"/c/l/{second}/")
    assert redirect.status_code == 302 and redirect["Location"] == "https://example.com/faq"
    assert client.get(f"/c/l/{first}/")["Location"] == "https://example.com/sakura?x=1&y=2"
    assert client.get(f"/c/l/{beyond}/").status_code == 404  # no such link in the campaign
    assert client.get(f"/c/l/{opened}/").status_code == 404  # an open token is not a click token
    assert client.get(f"/c/l/{row.pk}.0:forged/").status_code == 404
    assert page_client("bravo").get(f"/c/l/{first}/").status_code == 404
    with tenant_context(alpha):
        row.refresh_from_db()
        assert row.opened_at == first_open and row.clicked_at
        results = selectors.campaign_results(made)
        assert (results.opened, results.clicked, results.open_rate) == (1, 1, 50.0)
    with tenant_context(bravo):  # the same recipient id at bravo knows nothing of alpha's token
        assert links.read(links.CLICK, first) is None


# --- scheduling -----------------------------------------------------------------------------------

def test_schedule_then_the_minute_job_starts_it_once(alpha):
    with tenant_context(alpha):
        people(4)
        made = campaign(control_share=25)
        with pytest.raises(ValidationError) as caught:
            services.campaign_schedule(actor=None, campaign=made, at=timezone.now() - timedelta(minutes=1))
        assert "scheduled_at" in caught.value.message_dict
        at = timezone.now() + timedelta(hours=2)
        services.campaign_schedule(actor=None, campaign=made, at=at)
        made.refresh_from_db()
        assert made.status == Campaign.Status.SCHEDULED and made.scheduled_at == at
        assert services.campaigns_tick(now=at - timedelta(minutes=1)) == {"started": 0, "resumed": 0}
        assert services.campaigns_tick(now=at + timedelta(seconds=30)) == {"started": 1, "resumed": 0}
        made.refresh_from_db()
        assert made.status == Campaign.Status.SENDING and made.recipients.count() == 4
        assert made.recipients.filter(group="control").count() == 1
        assert services.campaigns_tick(now=at + timedelta(minutes=1))["started"] == 0
        cancelled = campaign(name="Cancelled")
        services.campaign_schedule(actor=None, campaign=cancelled, at=at)
        services.campaign_cancel(actor=None, campaign=cancelled)
        assert services.campaigns_tick(now=at + timedelta(minutes=2))["started"] == 0
        cancelled.refresh_from_db()
        assert cancelled.status == Campaign.Status.CANCELLED and not cancelled.recipients.exists()
        with pytest.raises(ValidationError):
            services.campaign_save(actor=None, campaign=made, name="Renamed", segment=made.segment,
                                   template=made.template)


def test_the_minute_job_resumes_a_send_whose_worker_went_quiet(alpha):
    with tenant_context(alpha):
        people(3)
        made = started()
        assert services.campaigns_tick()["resumed"] == 0  # heartbeat fresh
        Campaign.objects.filter(pk=made.pk).update(heartbeat_at=timezone.now() - services.STALE_AFTER - timedelta(seconds=5))
        assert services.campaigns_tick()["resumed"] == 1
        assert services.campaigns_tick()["resumed"] == 0  # claimed by the heartbeat


# --- test send, bounce, consent by staff ----------------------------------------------------------

def test_a_test_send_reaches_the_staff_member_and_is_recorded_nowhere(alpha, mailbox):
    with tenant_context(alpha):
        customers = people(3, language="en")
        made = campaign()
        sent = services.campaign_test_send(actor=staff(alpha, "manager"), campaign=made, to="manager@alpha.test")
        assert sent == 2 and len(mailbox) == 2  # one per language
        assert {to_of(m) for m in mailbox} == {"manager@alpha.test"}
        subjects = sorted(subject_of(m) for m in mailbox)
        assert subjects[0].startswith("[Test] ") and f"[Test] {customers[0].name}, cherry blossoms" in subjects
        assert not Recipient.objects.exists() and not Contact.objects.filter(channel="email").exists()
        assert "/c/u/test/" in parts(mailbox[0])[0]
        with pytest.raises(ValidationError) as caught:
            services.campaign_test_send(actor=None, campaign=made, to="not an address")
        assert "to" in caught.value.message_dict
        with pytest.raises(Exception) as denied:
            services.campaign_test_send(actor=staff(alpha, "sales"), campaign=made, to="x@example.cn")
        assert denied.type.__name__ == "PermissionDenied"


def test_a_bounce_recorded_later_stops_mail_to_the_address(alpha, mailbox):
    with tenant_context(alpha):
        customers = people(2)
        made = started()
        sending.campaign_send(campaign_id=made.pk)
        address = customers[0].emails.get().address
        with pytest.raises(ValidationError) as caught:
            services.recipient_bounce(actor=None, campaign=made, email="stranger@example.cn")
        assert "email" in caught.value.message_dict
        services.recipient_bounce(actor=staff(alpha, "manager"), campaign=made, email=address.upper(), reason="550 5.1.1")
        assert Recipient.objects.get(campaign=made, customer=customers[0]).status == "bounced"
        assert Consent.objects.get(customer=customers[0]).bounce_reason == "550 5.1.1"
        assert not consent.may_email(customers[0])
        assert selectors.campaign_results(made).delivered == 1


def test_staff_record_consent_in_the_change_log(alpha):
    with tenant_context(alpha):
        [customer] = people(1, opt_in=False)
        services.consent_record(actor=staff(alpha, "sales"), customer=customer, opt_in=True)
        assert consent.may_email(customer)
        services.consent_record(actor=staff(alpha, "sales"), customer=customer, opt_in=False)
        assert not consent.may_email(customer)
        log = list(ChangeLog.objects.filter(customer=customer, field="marketing_email").order_by("at", "id")
                   .values_list("old", "new"))
        assert log == [("", "opt-in"), ("opt-in", "opt-out")]
        with pytest.raises(Exception) as denied:
            services.consent_record(actor=staff(alpha, "finance"), customer=customer, opt_in=True)
        assert denied.type.__name__ == "PermissionDenied"


# --- effect and attribution -----------------------------------------------------------------------

def _trip(customer_id, confirmed_at, *, sell="1000.00", cost="800.00", status="confirmed"):
    trip = Trip.objects.create(customer_id=customer_id, title="Kyoto", destination="Kyoto", status=status,
                               currency="CNY", confirmed_at=confirmed_at)
    ItineraryItem.objects.create(trip=trip, kind="hotel", description="Hotel", sell=Decimal(sell), cost=Decimal(cost))
    return trip


def test_the_attribution_window_includes_both_edges_exactly(alpha, mailbox):
    with tenant_context(alpha):
        people(8)
        made = started(control_share=25, attribution_days=30, cost=Decimal("500.00"))  # 6 mailed, 2 held out
        sending.campaign_send(campaign_id=made.pk)
        sent_at = timezone.now().replace(microsecond=0) - timedelta(days=40)
        Recipient.objects.filter(campaign=made, group="send").update(sent_at=sent_at)
        start = made.started_at
        window = timedelta(days=30)
        tick = timedelta(microseconds=1)
        mailed = list(Recipient.objects.filter(campaign=made, group="send").order_by("id").values_list("customer_id", flat=True))
        held = list(Recipient.objects.filter(campaign=made, group="control").order_by("id").values_list("customer_id", flat=True))
        _trip(mailed[0], sent_at, sell="1000.00", cost="800.00")             # the first instant: counts
        _trip(mailed[1], sent_at + window, sell="2000.00", cost="1500.00")   # the last instant: counts
        _trip(mailed[1], sent_at + window - timedelta(days=1), sell="300.00", cost="100.00")  # a second trip
        _trip(mailed[2], sent_at + window + tick)                            # just after: no
        _trip(mailed[3], sent_at - tick)                                     # just before: no
        _trip(mailed[4], sent_at + timedelta(days=3), status="cancelled")    # cancelled: no
        _trip(held[0], start + window, sell="700.00", cost="600.00")        # control, from the start: counts
        _trip(held[1], start - tick)                                         # control, before the start: no
        # Responses: an inbound contact at the last instant, an enquiry just after the window.
        Contact.objects.create(customer_id=mailed[5], at=sent_at + window, channel="call", direction="in", summary="Asked")
        Contact.objects.create(customer_id=mailed[2], at=sent_at + timedelta(days=1), channel="email", direction="out",
                               summary="Outbound does not count")
        stage = Stage.objects.filter(kind=Stage.Kind.OPEN).order_by("position").first()
        Opportunity.objects.create(customer_id=mailed[3], title="Japan", currency="CNY", stage=stage,
                                   created_at=sent_at + window + tick)
        Opportunity.objects.create(customer_id=held[1], title="Japan", currency="CNY", stage=stage, created_at=start)

        results = selectors.campaign_results(made)
        assert (results.send.measured, results.send.converted, results.send.trips) == (6, 2, 3)
        assert (results.send.revenue, results.send.margin) == (Decimal("3300.00"), Decimal("900.00"))
        assert (results.control.measured, results.control.converted, results.control.trips) == (2, 1, 1)
        assert (results.control.revenue, results.control.margin) == (Decimal("700.00"), Decimal("100.00"))
        assert (results.send.responded, results.control.responded) == (1, 1)
        assert results.send.rate == 33.33 and results.control.rate == 50.0 and results.lift == -16.67
        assert results.net_margin == Decimal("400.00") and results.return_on_cost == 1.8
        rows = list(selectors.recipient_rows(made))
        assert len(rows) == 8 and sum(r[9] for r in rows) == 4
        summary = selectors.recent_results(limit=3)[0]
        assert summary["name"] == made.name and summary["send_conversion"] == 33.33 and summary["control_size"] == 2
        # A longer window takes the trip just after the old edge in.
        Campaign.objects.filter(pk=made.pk).update(attribution_days=31)
        made.refresh_from_db()
        assert selectors.campaign_results(made).send.converted == 3


def test_results_of_a_campaign_not_started_are_empty(alpha):
    with tenant_context(alpha):
        made = campaign()
        results = selectors.campaign_results(made)
        assert results.sent == 0 and results.lift is None and results.send.rate is None


# --- pages ----------------------------------------------------------------------------------------

def test_pages_template_campaign_test_send_schedule_and_results(alpha, page_client, mailbox):
    with tenant_context(alpha):
        customers = people(4)
        segment = Segment.objects.create(name="所有个人 Everyone", definition={"kind": "person"})
    client = page_client("alpha", "manager")
    assert "/campaigns/" in client.get("/").content.decode()  # the navigation
    bad = client.post("/campaigns/templates/new/", {"name": "春季", "subject_zh": "{{ nick }}", "body_zh": "x"})
    assert bad.status_code == 400 and "Unknown personal field: nick" in bad.content.decode()
    saved = client.post("/campaigns/templates/new/", {"name": "春季", "subject_zh": "{{ name }}，春天好", "body_zh": BODY_ZH,
                                                      "subject_en": "", "body_en": ""})
    assert saved.status_code == 302
    preview = client.get(saved["Location"]).content.decode()
    assert 'data-test="preview"' in preview and "王芳，春天好" in preview
    with tenant_context(alpha):
        tmpl = EmailTemplate.objects.get(name="春季")
    missing = client.post("/campaigns/new/", {"name": "", "control_share": 80, "attribution_days": 30, "cost": "0",
                                              "rate_per_second": 300})
    body = missing.content.decode()
    assert missing.status_code == 400 and "Choose the segment to mail." in body and "between 0 and 50" in body
    created = client.post("/campaigns/new/", {"name": "春季促销", "segment": segment.pk, "template": tmpl.pk,
                                              "control_share": 25, "attribution_days": 30, "cost": "300.00",
                                              "from_name": "Alpha", "reply_to": "", "rate_per_second": 300})
    assert created.status_code == 302
    detail = client.get(created["Location"]).content.decode()
    assert 'data-test="audience"' in detail and "4 customers of the segment may be e-mailed; 1 of them" in detail
    pk = int(created["Location"].rstrip("/").split("/")[-1])
    assert client.post(f"/campaigns/{pk}/test-send/", {"to": "boss@alpha.example"}).status_code == 302
    assert [to_of(m) for m in mailbox] == ["boss@alpha.example"]
    assert client.post(f"/campaigns/{pk}/test-send/", {"to": "nope"}).status_code == 400
    past = client.post(f"/campaigns/{pk}/schedule/", {"scheduled_at": "2020-01-01T10:00"})
    assert past.status_code == 400 and "Choose a time in the future." in past.content.decode()
    future = (timezone.now() + timedelta(days=2)).astimezone(timezone.get_fixed_timezone(8)).strftime("%Y-%m-%dT%H:%M")
    assert client.post(f"/campaigns/{pk}/schedule/", {"scheduled_at": future}).status_code == 302
    with tenant_context(alpha):
        made = Campaign.objects.get(pk=pk)
        assert made.status == "scheduled" and made.scheduled_at > timezone.now() + timedelta(days=1)
    assert client.post(f"/campaigns/{pk}/start/").status_code == 302
    with tenant_context(alpha):
        sending.campaign_send(campaign_id=pk)
    results = client.get(f"/campaigns/{pk}/results/")
    assert results.status_code == 200 and 'data-test="delivered">3<' in results.content.decode()
    csv_body = b"".join(client.get(f"/campaigns/{pk}/results.csv").streaming_content).decode()
    assert csv_body.startswith("\ufeffcustomer,e-mail,group") and csv_body.count("\n") == 5
    assert "Held out (control group)" in csv_body
    bounce = client.post(f"/campaigns/{pk}/results/", {"email": "nobody@x.cn"})
    assert bounce.status_code == 400 and "was not mailed by this campaign" in bounce.content.decode()
    listing = client.get("/campaigns/").content.decode()
    assert "春季促销" in listing and f"/campaigns/{pk}/results/" in listing
    assert client.get(f"/campaigns/{pk}/edit/").status_code == 404  # started: no longer editable
    assert page_client("alpha", "sales").get("/campaigns/").status_code == 403
    assert page_client("alpha", "sales").post(f"/campaigns/{pk}/cancel/").status_code == 403
    assert customers


def test_consent_section_on_the_customer_card(alpha, page_client):
    with tenant_context(alpha):
        [customer] = people(1, opt_in=False)
    sales = page_client("alpha", "sales")
    card = sales.get(f"/customers/{customer.pk}/").content.decode()
    assert 'data-test="consent-card"' in card and "Not asked yet" in card and 'data-test="consent-form"' in card
    assert sales.post(f"/customers/{customer.pk}/consent/", {"opt_in": "yes"}).status_code == 302
    with tenant_context(alpha):
        assert consent.may_email(customer)
    assert "Agreed" in sales.get(f"/customers/{customer.pk}/").content.decode()
    finance = page_client("alpha", "finance")
    assert 'data-test="consent-form"' not in finance.get(f"/customers/{customer.pk}/").content.decode()
    assert finance.post(f"/customers/{customer.pk}/consent/", {"opt_in": "no"}).status_code == 403


# --- API ------------------------------------------------------------------------------------------

def test_api_templates_campaigns_actions_results_and_consent(alpha, api_client, mailbox):
    with tenant_context(alpha):
        customers = people(5)
        segment = Segment.objects.create(name="Everyone", definition={"kind": "person"})
    client = api_client("alpha", "manager")
    bad = client.post("/api/v1/campaign-templates/", {"name": "", "subject_en": "Hi {{ x }}", "body_en": "b"}, format="json")
    assert bad.status_code == 400 and {"name", "subject_en"} <= set(bad.json()["error"]["fields"])
    tmpl = client.post("/api/v1/campaign-templates/", {"name": "API", "subject_en": "Hi {{ first_name }}",
                                                       "body_en": "Go https://example.com/go"}, format="json")
    assert tmpl.status_code == 201, tmpl.json()
    tid = tmpl.json()["id"]
    preview = client.get(f"/api/v1/campaign-templates/{tid}/preview/", {"customer": customers[1].pk}).json()
    assert preview == [{"language": "en", "subject": "Hi Given1", "body": "Go https://example.com/go"}]
    bad = client.post("/api/v1/campaigns/", {"name": "X", "segment": segment.pk, "template": tid, "control_share": 60,
                                             "reply_to": "nope"}, format="json")
    assert bad.status_code == 400 and {"control_share", "reply_to"} <= set(bad.json()["error"]["fields"])
    made = client.post("/api/v1/campaigns/", {"name": "API campaign", "segment": segment.pk, "template": tid,
                                              "control_share": 20, "cost": "99.50"}, format="json")
    assert made.status_code == 201
    cid = made.json()["id"]
    assert client.patch(f"/api/v1/campaigns/{cid}/", {"attribution_days": 14}, format="json").json()["attribution_days"] == 14
    assert client.post(f"/api/v1/campaigns/{cid}/test-send/", {}, format="json").json() == {"sent": 1}
    assert [to_of(m) for m in mailbox] == ["manager@alpha.test"]
    schedule = client.post(f"/api/v1/campaigns/{cid}/schedule/", {"scheduled_at": "2020-01-01T00:00:00Z"}, format="json")
    assert schedule.status_code == 400 and "scheduled_at" in schedule.json()["error"]["fields"]
    started_ = client.post(f"/api/v1/campaigns/{cid}/start/")
    assert started_.status_code == 200 and started_.json()["status"] == "sending"
    assert started_.json()["definition"] == {"kind": "person"}
    assert client.post(f"/api/v1/campaigns/{cid}/start/").status_code == 400
    with tenant_context(alpha):
        sending.campaign_send(campaign_id=cid)
    results = client.get(f"/api/v1/campaigns/{cid}/results/").json()
    assert (results["sent"], results["delivered"], results["control"]["measured"]) == (4, 4, 1)
    assert results["cost"] == "99.50" and results["lift"] == 0.0
    address = mailbox[-1]["To"]
    bounced = client.post(f"/api/v1/campaigns/{cid}/bounce/", {"email": address, "reason": "550"}, format="json")
    assert bounced.status_code == 200 and bounced.json()["status"] == "bounced"
    with tenant_context(alpha):
        other = next(c for c in customers if c.emails.get().address != address)
    consent_url = f"/api/v1/consents/{other.pk}/"
    assert client.get(consent_url).json()["state"] == "opt_in"
    changed = client.put(consent_url, {"email_opt_in": False}, format="json")
    assert changed.status_code == 200 and changed.json()["state"] == "opt_out" and not changed.json()["may_email"]
    assert api_client("alpha", "sales").get("/api/v1/campaigns/").status_code == 403
    assert api_client("alpha", "sales").get(consent_url).status_code == 200
    assert api_client("alpha", "finance").put(consent_url, {"email_opt_in": True}, format="json").status_code == 403


# --- the fence between agencies -------------------------------------------------------------------

def test_another_agencys_campaigns_and_links_stay_out_of_reach(alpha, bravo, api_client, page_client, mailbox):
    with tenant_context(bravo):
        [theirs] = people(1, prefix="bravo")
        made = started(name="Bravo secret")
        sending.campaign_send(campaign_id=made.pk)
        row = Recipient.objects.get(campaign=made)
        tokens = {kind: links.make(kind, row.pk, 0 if kind == links.CLICK else None)
                  for kind in (links.UNSUBSCRIBE, links.OPEN, links.CLICK)}
        tid = made.template_id
    with tenant_context(alpha):
        [ours] = people(1, prefix="alpha")
        mine = started(name="Alpha own")  # same ids may exist at alpha: the tokens must still fail
    alpha_api = api_client("alpha", "manager")
    for url in (f"/api/v1/campaigns/{made.pk}/", f"/api/v1/campaigns/{made.pk}/results/",
                f"/api/v1/campaign-templates/{tid}/", f"/api/v1/consents/{theirs.pk}/"):
        assert alpha_api.get(url).status_code == 404, url
    assert alpha_api.post(f"/api/v1/campaigns/{made.pk}/cancel/").status_code == 404
    assert api_client("alpha", "manager", on="bravo.localhost").get("/api/v1/campaigns/").status_code == 401
    alpha_pages = page_client("alpha", "manager")
    for url in (f"/campaigns/{made.pk}/results/", f"/campaigns/{made.pk}/", f"/campaigns/templates/{tid}/"):
        assert alpha_pages.get(url).status_code == 404, url
    assert alpha_pages.post(f"/customers/{theirs.pk}/consent/", {"opt_in": "yes"}).status_code == 404
    assert "Bravo secret" not in alpha_pages.get("/campaigns/").content.decode()
    anonymous = page_client("alpha")
    assert anonymous.get(f"/c/u/{tokens[links.UNSUBSCRIBE]}/").status_code == 404
    assert anonymous.post(f"/c/u/{tokens[links.UNSUBSCRIBE]}/").status_code == 404
    assert anonymous.get(f"/c/l/{tokens[links.CLICK]}/").status_code == 404
    anonymous.get(f"/c/o/{tokens[links.OPEN]}/")
    with tenant_context(alpha):
        assert consent.may_email(ours) and Recipient.objects.get(campaign=mine).opened_at is None
    with tenant_context(bravo):
        assert consent.may_email(theirs) and Recipient.objects.get(pk=row.pk).opened_at is None


# --- demo -----------------------------------------------------------------------------------------

def test_demo_campaigns_show_numbers_and_are_made_once(alpha):
    from crm.campaigns.demo import seed_campaigns

    with tenant_context(alpha):
        people(400, prefix="demo")
        Consent.objects.all().delete()  # the demo writes consent itself
    counts = seed_campaigns(alpha)
    assert counts["campaigns"] == 2 and counts["recipients"] > 200 and counts["trips"] > 0
    assert seed_campaigns(alpha) == {"consents": 0, "campaigns": 0, "recipients": 0, "trips": 0}
    with tenant_context(alpha):
        sent = Campaign.objects.get(status=Campaign.Status.SENT)
        results = selectors.campaign_results(sent)
        assert results.sent > 0 and results.opened > 0 and results.clicked > 0 and results.control.measured > 0
        assert results.send.converted > 0 and results.lift is not None and results.send.revenue > 0
        assert Contact.objects.filter(channel="email", direction="out").count() == results.sent
        assert Campaign.objects.filter(status=Campaign.Status.DRAFT).count() == 1


def test_the_control_group_rounds_half_up_as_the_draft_page_says(alpha):
    with tenant_context(alpha):
        people(5)
        made = started(control_share=10)  # 0.5 of a customer: one held out
        assert made.recipients.filter(group="control").count() == 1 == services.control_size(5, 10)
        assert [services.control_size(n, 50) for n in (0, 1, 2, 3)] == [0, 1, 1, 2]


def test_the_send_task_queues_its_own_retry_when_the_server_fails(alpha, smtp, django_capture_on_commit_callbacks):
    from crm.campaigns import tasks

    smtp(fail_after=2)
    with tenant_context(alpha):
        people(5)
        made = started()
        with django_capture_on_commit_callbacks() as queued:
            result = tasks.send_campaign(made.pk)  # the task body, as the worker runs it
        assert result["interrupted"].startswith("SMTPDataError") and len(queued) == 1  # the retry, on commit
        smtp()
        with django_capture_on_commit_callbacks() as queued:
            result = tasks.send_campaign(made.pk)
        assert result["sent"] == 3 and result["done"] and not queued
        assert tasks.tick() == {"started": 0, "resumed": 0}


def test_the_plans_monthly_allowance_of_campaign_emails_is_kept(alpha):
    from billing import services as billing
    from billing.models import Plan

    Plan.objects.create(code=alpha.plan, name="Small", seat_price_month=Decimal("10"), seat_price_year=Decimal("100"),
                        campaign_emails_month=30)
    with tenant_context(alpha):
        people(20)
        first = started(name="First")  # 20 of 30
        assert first.status == Campaign.Status.SENDING
        Recipient.objects.filter(campaign=first).update(sent_at=timezone.now(), status=Recipient.Status.SENT)
        assert billing.usage(alpha)["campaign_emails"] == 20
        second = campaign(name="Second")
        with pytest.raises(ValidationError) as over:
            services.campaign_start(actor=None, campaign=second)  # another 20 would make 40 > 30
        assert "includes 30 a month and 20 are used" in over.value.message_dict["segment"][0]
        second.refresh_from_db()
        assert second.status == Campaign.Status.DRAFT and not Recipient.objects.filter(campaign=second).exists()
        small = campaign(name="Small", definition={"kind": "person", "tags": ["few"]})
        Customer.objects.filter(pk__in=Customer.objects.order_by("pk").values("pk")[:5]).update(tags=["few"])
        assert services.campaign_start(actor=None, campaign=small).status == Campaign.Status.SENDING  # 5 fit
