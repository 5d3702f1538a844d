"""In a real browser: the agency admin exports all of alpha's data from Settings, watches it being
prepared (a real Celery worker makes the archive) and downloads the zip; a salesperson of alpha is
refused the page and the download; an operator on the platform domain schedules the deletion of
suspended charlie and cancels it.

Chromium drives the gunicorn app server of tests/servers.py, so what the server and the worker write
is committed: the fixtures put back the exports (and their files), alpha's and charlie's events,
charlie's status, the sign-ins and the sessions afterwards.
"""
import json
import zipfile

import pytest
from django_tenants.utils import schema_context, tenant_context

from tests.conftest import OPERATOR, fresh_totp_code
from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS
OPERATOR_PASSWORD = "operator-pass-1!"  # tests/conftest.py


def _sign_ins(agency, emails):
    from django.contrib.sessions.models import Session

    from accounts.models import User

    with tenant_context(agency):
        return ({e: User.objects.get(email=e).last_login for e in emails},
                set(Session.objects.values_list("session_key", flat=True)))


def _put_back_sign_ins(agency, saved):
    from django.contrib.sessions.models import Session

    from accounts.models import User

    last_logins, sessions = saved
    with tenant_context(agency):
        for email, last_login in last_logins.items():
            User.objects.filter(email=email).update(last_login=last_login)
        Session.objects.exclude(session_key__in=sessions).delete()


@pytest.fixture
def export_case(committed):
    from tenants.models import Agency, AgencyEvent
    from tenants.portability import services
    from tenants.portability.models import AgencyExport

    with committed():
        agency = Agency.objects.get(slug="alpha")
        exports = set(AgencyExport.objects.unscoped().filter(agency=agency).values_list("pk", flat=True))
        events = set(AgencyEvent.objects.unscoped().filter(agency=agency).values_list("pk", flat=True))
        saved = _sign_ins(agency, ["admin@alpha.test", "sales@alpha.test"])
    yield agency
    with committed():
        for export in AgencyExport.objects.unscoped().filter(agency=agency).exclude(pk__in=exports):
            if export.file_name:
                services.export_path(export).unlink(missing_ok=True)
            export.delete()
        AgencyEvent.objects.unscoped().filter(agency=agency).exclude(pk__in=events).delete()
        _put_back_sign_ins(agency, saved)


def test_an_admin_exports_all_data_and_downloads_it_a_salesperson_cannot(app_server, app_worker, export_case,
                                                                         tmp_path):
    from playwright.sync_api import expect

    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "admin")
        page.goto(app_server.url("alpha", "/settings/"))
        page.click('[data-test="export"]')
        expect(page.locator("main h1")).to_have_text("Export all data")
        page.click('[data-test="start-export"]')
        progress = page.locator("#export-progress")
        expect(progress).to_have_attribute("data-status", "done", timeout=60_000)  # htmx polls the worker's progress
        expect(progress).to_contain_text("The export is ready")
        with page.expect_download() as download:
            page.click('[data-test="download"]')
        archive = tmp_path / download.value.suggested_filename
        download.value.save_as(archive)
        assert archive.name.startswith("caravan-alpha-") and archive.suffix == ".zip"
        download_url = page.locator('[data-test="download"]').get_attribute("href")
        page.click("text=All exports")
        expect(page.locator('[data-test="exports"] tbody tr').first).to_contain_text("Ready")

        # A salesperson of the same agency: neither the page nor the admin's archive.
        page.context.clear_cookies()
        sign_in(page, app_server, "alpha", "sales")
        assert page.goto(app_server.url("alpha", "/settings/export/")).status == 403
        assert page.goto(app_server.url("alpha", download_url)).status == 403

    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["agency"]["slug"] == "alpha"


@pytest.fixture
def deletion_case(committed):
    from django.contrib.sessions.models import Session

    from accounts.models import User
    from tenants.models import Agency, AgencyEvent

    with committed():
        agency = Agency.objects.get(slug="charlie")
        assert agency.status == Agency.Status.SUSPENDED  # tests/conftest.py
        events = set(AgencyEvent.objects.unscoped().filter(agency=agency).values_list("pk", flat=True))
        with schema_context("public"):
            last_login = User.objects.get(email=OPERATOR).last_login
            sessions = set(Session.objects.values_list("session_key", flat=True))
    yield agency
    with committed():
        Agency.objects.filter(pk=agency.pk).update(status=Agency.Status.SUSPENDED, deletion_due_at=None)
        AgencyEvent.objects.unscoped().filter(agency=agency).exclude(pk__in=events).delete()
        with schema_context("public"):
            User.objects.filter(email=OPERATOR).update(last_login=last_login)
            Session.objects.exclude(session_key__in=sessions).delete()


def test_an_operator_schedules_the_deletion_of_a_suspended_agency_and_cancels_it(app_server, deletion_case):
    from playwright.sync_api import expect

    with chromium_page() as page:
        page.goto(app_server.url(None, "/"))
        page.fill("input[name=username]", OPERATOR)
        page.fill("input[name=password]", OPERATOR_PASSWORD)
        page.click("main button[type=submit]")
        page.fill("input[name=code]", fresh_totp_code(OPERATOR))  # operators pass a second step
        page.click("main button.primary")
        expect(page).to_have_url(app_server.url(None, "/"))
        page.goto(app_server.url(None, "/agencies/charlie/"))
        deletion = page.locator('[data-test="deletion"]')
        deletion.locator('input[name="note"]').fill("asked by the owner")
        deletion.locator('[data-test="schedule-deletion"]').click()
        expect(page.locator(".pagehead .pill")).to_have_text("Scheduled for deletion")
        expect(deletion).to_contain_text("To be deleted on")
        expect(page.locator("main table").last).to_contain_text("Deletion scheduled")
        deletion.locator('[data-test="cancel-deletion"]').click()
        expect(page.locator(".pagehead .pill")).to_have_text("Suspended")
        expect(deletion.locator('[data-test="schedule-deletion"]')).to_be_visible()
        expect(page.locator("main table").last).to_contain_text("Deletion cancelled")
