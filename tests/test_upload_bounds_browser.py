"""In a real browser against gunicorn and a Celery worker: the 1 MB bomb is refused on the import
page without the gunicorn worker's memory growing; a normal file is read and checked by the worker
while the page polls; a bomb that lies in its zip directory fails its job with the reason. Screens
at 1400 and 390 px, English and Chinese, go to /tmp/upload-bounds-*.png."""
import re
from pathlib import Path

import pytest
from django_tenants.utils import tenant_context

from tests.bombs import lying_copy, workbook_with_cell
from tests.test_browser import BROWSER_TESTS, chromium_page, sign_in

pytestmark = BROWSER_TESTS
MB = 1024 * 1024
SHOTS = Path("/tmp")


def gunicorn_workers_peak(port: int) -> dict[int, int]:
    """{pid: VmHWM bytes} of the gunicorn processes serving ``port`` (master and workers)."""
    peaks = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            if b"gunicorn" not in command or f"127.0.0.1:{port}".encode() not in command:
                continue
            for line in (proc / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[int(proc.name)] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return peaks


@pytest.fixture
def forget_imports(committed):
    """Import jobs the server makes in alpha (committed) and their files go after the test; the
    manager's language, last sign-in and alpha's sessions are put back."""
    from django.contrib.sessions.models import Session
    from django.core.files.storage import default_storage

    from accounts.models import User
    from crm.customers.models import ImportJob
    from tenants.models import Agency

    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        before = set(ImportJob.objects.values_list("pk", flat=True))
        manager = User.objects.get(email="manager@alpha.test")
        sessions = set(Session.objects.values_list("session_key", flat=True))
    yield
    with committed(), tenant_context(Agency.objects.get(slug="alpha")):
        User.objects.filter(pk=manager.pk).update(language=manager.language, last_login=manager.last_login)
        Session.objects.exclude(session_key__in=sessions).delete()
        for job in ImportJob.objects.exclude(pk__in=before):
            if job.file.name:
                for name in (job.file.name, f"{job.file.name}.json", f"{job.file.name}.json.lock"):
                    default_storage.delete(name)
            job.delete()


def test_bombs_and_a_normal_file_on_the_import_pages(app_server, app_worker, forget_imports,  # noqa: F811
                                                      tmp_path):
    from playwright.sync_api import expect

    bomb = workbook_with_cell(tmp_path / "customers.xlsx", 1000)
    liar = lying_copy(bomb, tmp_path / "名单.xlsx")
    normal = tmp_path / "客户名单.csv"
    normal.write_text("姓名,手机,邮箱\n王芳,13800138000,wf@example.com\n李雷,1390013,lilei@example.com\n",
                      encoding="utf-8")
    with chromium_page() as page:
        sign_in(page, app_server, "alpha", "manager")
        page.goto(app_server.url("alpha", "/customers/import/"))
        before = gunicorn_workers_peak(app_server.port)
        page.set_input_files("input[type=file]", str(bomb))
        page.click("main button[type=submit]")
        expect(page.locator("main")).to_contain_text("unpacks to more than 200 MB")
        after = gunicorn_workers_peak(app_server.port)
        grown = max(after[pid] - before.get(pid, after[pid]) for pid in after)
        assert grown < 64 * MB, f"a gunicorn worker grew by {grown / MB:.0f} MB"
        for width in (1400, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"upload-bounds-refused-{width}-en.png"), full_page=True)

        # A normal file: stored, then read and checked by the worker while the page polls.
        page.goto(app_server.url("alpha", "/customers/import/"))
        page.set_input_files("input[type=file]", str(normal))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/customers/import/\d+/mapping/"))
        expect(page.locator("[data-test=preview]")).to_contain_text("王芳", timeout=60_000)  # once the worker read it
        page.click("button[value=check]")
        expect(page.locator("[data-test=create]")).to_have_text("1", timeout=60_000)
        expect(page.locator("#report")).to_contain_text("Rows with errors")
        for width in (1400, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"upload-bounds-checked-{width}-en.png"), full_page=True)

        # The lying bomb passes the web side; the worker refuses it and the page says why.
        page.goto(app_server.url("alpha", "/customers/import/"))
        page.set_input_files("input[type=file]", str(liar))
        page.click("main button[type=submit]")
        expect(page).to_have_url(re.compile(r"/customers/import/\d+/$"), timeout=60_000)  # sent on by the poll
        expect(page.locator("[data-test=failure]")).to_contain_text("damaged")
        expect(page.locator("#import-progress")).to_have_attribute("data-status", "failed")
        for width in (1400, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"upload-bounds-failed-{width}-en.png"), full_page=True)

    with chromium_page(locale="zh-CN") as page:
        sign_in(page, app_server, "alpha", "manager")
        page.click('button[data-lang="zh-hans"]')
        expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
        page.goto(app_server.url("alpha", "/customers/import/"))
        page.set_input_files("input[type=file]", str(bomb))
        page.click("main button[type=submit]")
        expect(page.locator("[data-field=file]")).to_be_visible()
        for width in (1400, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"upload-bounds-refused-{width}-zh.png"), full_page=True)
        page.goto(app_server.url("alpha", "/customers/import/"))
        page.set_input_files("input[type=file]", str(normal))
        page.click("main button[type=submit]")
        expect(page.locator("[data-test=preview]")).to_contain_text("王芳", timeout=60_000)
        page.click("button[value=check]")
        expect(page.locator("[data-test=create]")).to_have_text("1", timeout=60_000)
        for width in (1400, 390):
            page.set_viewport_size({"width": width, "height": 900})
            page.screenshot(path=str(SHOTS / f"upload-bounds-checked-{width}-zh.png"), full_page=True)
