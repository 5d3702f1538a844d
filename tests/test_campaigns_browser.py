"""In a real browser: a manager builds a segment on the segment page, makes a campaign to it,
sends themself a test (it arrives in the SMTP mailbox), schedules the campaign; the minute job
starts it when it is due and the worker sends it; the manager reads the results.

Chromium drives a gunicorn app server of this module's own (like tests/servers.py's, but its
e-mail goes to the session's SMTP mailbox), so everything is committed: the ``journey`` fixture
makes the customers and the template and removes all of it afterwards, with alpha's sessions and
sign-ins restored.
"""
import re
import time
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django_tenants.utils import tenant_context

from tests import servers
from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def mail_server(django_db_setup, django_db_blocker, tmp_path_factory, _smtp_server):
    """gunicorn on the committed test database, sending e-mail to the session's SMTP mailbox."""
    _inbox, smtp_port = _smtp_server
    with servers.gunicorn_server(
            port=servers.free_port(), log_dir=tmp_path_factory.mktemp("campaign-server"),
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp_port), EMAIL_USE_TLS="0", EMAIL_HOST_USER="", EMAIL_HOST_PASSWORD="") as server:
        yield server


@pytest.fixture
def journey(committed):
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from accounts.models import User
    from crm.campaigns import services
    from crm.campaigns.models import Campaign, Consent, EmailTemplate, Recipient
    from crm.customers.models import Contact, Customer, Email
    from crm.segments.models import Segment
    from tenants.models import Agency

    tag = uuid.uuid4().hex[:6]
    with committed():
        agency = Agency.objects.get(slug="alpha")
        with tenant_context(agency):
            manager = User.objects.get(email="manager@alpha.test")
            last_login, sessions = manager.last_login, set(Session.objects.values_list("session_key", flat=True))
            customers = []
            for n, (name, language) in enumerate([("王芳", "zh-hans"), ("Emma Brown", "en"), ("李雷", "zh-hans"),
                                                  ("No Consent", "en")]):
                customer = Customer.objects.create(name=f"{name} {tag}", language=language, tags=[f"journey-{tag}"])
                Email.objects.create(customer=customer, address=f"journey-{tag}-{n}@example.cn")
                if n < 3:
                    Consent.objects.create(customer=customer, email_opt_in=True, opted_in_at=timezone.now())
                customers.append(customer)
            template = services.template_save(
                actor=None, name=f"春游 Spring {tag}", subject_zh="{{ name }}，春天去京都吧",
                body_zh="{{ name }} 您好！樱花季行程：https://example.com/kyoto\n{{ agency_name }}",
                subject_en="{{ first_name }}, Kyoto in spring", body_en="Dear {{ name }}, see https://example.com/kyoto")
    yield {"tag": tag, "customers": customers, "template": template, "agency": agency}
    with committed(), tenant_context(agency):
        ids = [c.pk for c in customers]
        contacts = list(Recipient.objects.filter(customer_id__in=ids).values_list("contact_id", flat=True))
        Campaign.objects.filter(template=template).delete()
        Contact.objects.filter(pk__in=[c for c in contacts if c]).delete()
        EmailTemplate.objects.filter(pk=template.pk).delete()
        Segment.objects.filter(name__contains=tag).delete()
        Customer.objects.filter(pk__in=ids).delete()
        User.objects.filter(pk=manager.pk).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


def test_build_a_segment_send_a_test_schedule_a_campaign_and_see_its_results(mail_server, journey, committed,
                                                                             mailbox):
    from django.utils import timezone
    from playwright.sync_api import expect

    from crm.campaigns import sending, services
    from crm.campaigns.models import Campaign

    tag = journey["tag"]
    when = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo(journey["agency"].time_zone))
    with chromium_page() as page:
        # 1. The manager builds the segment on the segment page.
        sign_in(page, mail_server, "alpha", "manager")
        page.goto(mail_server.url("alpha", "/segments/new/"))
        page.fill('input[name="name"]', f"春游客户 {tag}")
        page.fill('input[name="tags"]', f"journey-{tag}")
        page.click('[data-test="save"]')
        expect(page.locator("main h1")).to_contain_text(f"春游客户 {tag}")

        # 2. A campaign to it, with a third held out as the control group.
        page.click('nav summary:has-text("Marketing")')  # the header groups it (issue 20)
        page.click('nav a:has-text("Campaigns")')
        page.click('[data-test="new-campaign"]')
        page.fill('input[name="name"]', f"京都春游 {tag}")
        page.select_option('select[name="segment"]', label=f"春游客户 {tag}")
        page.select_option('select[name="template"]', label=f"春游 Spring {tag}")
        page.fill('input[name="control_share"]', "34")
        page.fill('input[name="cost"]', "120.00")
        page.click('button:has-text("Save campaign")')
        expect(page.locator('[data-test="campaign-status"]')).to_have_text("Draft")
        expect(page.locator('[data-test="audience"]')).to_contain_text("3 customers of the segment may be e-mailed; 1 of")

        # 3. A test to the manager's own address: it arrives, one per language.
        expect(page.locator('[data-test="test-send"] input[name="to"]')).to_have_value("manager@alpha.test")
        page.click('button:has-text("Send test")')
        expect(page.locator(".flash")).to_contain_text("Test sent to manager@alpha.test")
        deadline = time.monotonic() + 10
        while len(mailbox) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(m["To"] for m in mailbox) == ["manager@alpha.test"] * 2
        assert all(m["Subject"] for m in mailbox)

        # 4. Scheduled for tomorrow.
        page.fill('input[name="scheduled_at"]', when.strftime("%Y-%m-%dT%H:%M"))
        page.click('[data-test="schedule"] button:has-text("Schedule")')
        expect(page.locator('[data-test="campaign-status"]')).to_have_text("Scheduled")
        expect(page.locator('[data-test="scheduled-at"]')).to_be_visible()
        campaign_url = page.url

    # 5. Time passes: the minute job starts the campaign and the worker sends it.
    mailbox.clear()
    with committed(), tenant_context(journey["agency"]):
        campaign = Campaign.objects.get(name=f"京都春游 {tag}")
        assert campaign.status == Campaign.Status.SCHEDULED and campaign.scheduled_at.astimezone(
            ZoneInfo(journey["agency"].time_zone)).strftime("%Y-%m-%dT%H:%M") == when.strftime("%Y-%m-%dT%H:%M")
        Campaign.objects.filter(pk=campaign.pk).update(scheduled_at=timezone.now() - timedelta(minutes=1))
        assert services.campaigns_tick()["started"] == 1
        counts = sending.campaign_send(campaign_id=campaign.pk)
        assert counts["sent"] == 2 and counts["done"]
        mailed = sorted(m["To"] for m in mailbox)
        assert len(mailed) == 2 and all(a.startswith(f"journey-{tag}-") for a in mailed)
        assert f"journey-{tag}-3@example.cn" not in mailed  # no consent

    # 6. The manager reads the results.
    with chromium_page() as page:
        sign_in(page, mail_server, "alpha", "manager")
        page.goto(campaign_url)
        expect(page.locator('[data-test="campaign-status"]')).to_have_text("Sent")
        page.click('[data-test="results-link"]')
        expect(page).to_have_url(re.compile(r"/campaigns/\d+/results/$"))
        expect(page.locator('[data-test="delivered"]')).to_have_text("2")
        expect(page.locator('[data-test="send-group"]')).to_contain_text("Mailed (send group)")
        expect(page.locator('[data-test="control-group"] td').nth(1)).to_have_text("1")
        expect(page.locator('[data-test="net-margin"]')).to_contain_text("-CNY 120.00")
