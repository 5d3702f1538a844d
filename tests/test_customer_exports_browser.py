"""In a real browser, against gunicorn and a real worker: a customer list too long to send at once is
offered as a background export; its page shows the progress, then the download, and the file holds
every customer once. Screenshots (1400 and 390 px, English and Chinese) go to the test's tmp folder.
"""
import csv
import io

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = [*BROWSER_TESTS, pytest.mark.slow]
MANY = 5_001  # CUSTOMER_EXPORT_DIRECT_ROWS (5,000 on the app server) + 1
REF = "browser-export-"


@pytest.fixture
def many_customers(committed, alpha):
    from accounts.models import User

    with committed(), tenant_context(alpha), connection.cursor() as cursor:
        now = timezone.now()
        cursor.execute(
            "INSERT INTO crm_customer (kind, name, latin_surname, latin_given, gender, language, source, tags, notes, "
            "industry, external_ref, search_text, created_at, updated_at) "
            "SELECT 'person', '浏览器导出' || i, '', '', '', 'zh-hans', 'import', '{}', '', '', %s || i, '', %s, %s "
            "FROM generate_series(1, %s) i", [REF, now, now, MANY])
        cursor.execute("SELECT count(*) FROM crm_customer WHERE merged_into_id IS NULL")
        total = cursor.fetchone()[0]
        language = User.objects.get(email="manager@alpha.test").language
    yield total
    with committed(), tenant_context(alpha), connection.cursor() as cursor:
        cursor.execute("DELETE FROM crm_customerexport")
        cursor.execute("DELETE FROM crm_customer WHERE external_ref LIKE %s", [REF + "%"])
        User.objects.filter(email="manager@alpha.test").update(language=language)


def test_a_long_list_is_prepared_in_the_background_and_downloaded_whole(app_server, app_worker, committed,
                                                                       many_customers, tmp_path, alpha):
    from accounts.models import User

    from playwright.sync_api import expect

    shots = []
    for language in ("en", "zh-hans"):
        with committed(), tenant_context(alpha):
            User.objects.filter(email="manager@alpha.test").update(language=language)
        with chromium_page() as page:
            sign_in(page, app_server, "alpha", "manager")
            for width in (1400, 390):
                page.set_viewport_size({"width": width, "height": 900})
                page.goto(app_server.url("alpha", "/customers/export/"))
                expect(page.locator("#export-confirm")).to_be_visible()
                shots.append(tmp_path / f"confirm-{language}-{width}.png")
                page.screenshot(path=shots[-1], full_page=True)
            page.click("[data-test=start-export]")
            expect(page.locator("#export-progress")).to_be_visible()
            shots.append(tmp_path / f"progress-{language}.png")
            page.screenshot(path=shots[-1], full_page=True)
            expect(page.locator("[data-test=download]")).to_be_visible(timeout=120_000)  # htmx polls until ready
            for width in (1400, 390):
                page.set_viewport_size({"width": width, "height": 900})
                shots.append(tmp_path / f"ready-{language}-{width}.png")
                page.screenshot(path=shots[-1], full_page=True)
            with page.expect_download() as download:
                page.click("[data-test=download]")
            body = download.value.path().read_bytes()
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[1:]
        ids = [int(r[0]) for r in rows]
        assert len(ids) == len(set(ids)) == many_customers  # every customer, once
    print("\n".join(str(s) for s in shots))
