"""A passport scan uploaded from a phone (390 px) in Chromium: the upload page opens the camera input, Playwright
sets a real JPEG on it, the trip page then shows the scan waiting for review, and nothing scrolls sideways
(issue 21, crm.documents). Rows are committed at alpha; conftest removes them afterwards."""
import io

from PIL import Image

from tests.test_browser import BROWSER_TESTS, chromium_page
from tests.test_portal_browser import PHONE, fits, shots, traveler  # noqa: F401  (fixture)

pytestmark = BROWSER_TESTS


def test_a_traveler_uploads_a_passport_scan_from_a_phone(app_server, traveler, committed, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    scan = tmp_path / "passport.jpg"
    out = io.BytesIO()
    Image.new("RGB", (320, 220), (200, 40, 40)).save(out, "JPEG")
    scan.write_bytes(out.getvalue())
    token, _code = traveler["tokens"][0]
    trip = traveler["trip"]
    with chromium_page(locale="zh-CN") as page:
        page.set_viewport_size({"width": PHONE, "height": 860})
        page.goto(app_server.url("alpha", f"/portal/link/{token}/"))
        page.locator("main form button").click()
        expect(page).to_have_url(app_server.url("alpha", "/portal/"))
        page.goto(app_server.url("alpha", f"/portal/trips/{trip}/"))
        panel = page.locator("section.portal-docs")
        expect(panel).to_be_visible()
        panel.locator("a.button.accent").click()
        expect(page).to_have_url(app_server.url("alpha", f"/portal/trips/{trip}/documents/upload/"))
        file_input = page.locator("input[type=file][name=file]")
        expect(file_input).to_have_attribute("capture", "environment")
        fits(page, "upload page 390")
        page.select_option("select[name=kind]", "passport")
        file_input.set_input_files(str(scan))
        page.fill("input[name=number]", "E 8765 4321")
        page.screenshot(path=str(shots() / "document-upload-390.png"), full_page=True)
        page.locator("form.portal-upload button[type=submit]").click()
        expect(page).to_have_url(app_server.url("alpha", f"/portal/trips/{trip}/#documents"))
        expect(page.locator("section.portal-docs .doc-pending").first).to_be_visible()
        fits(page, "trip page with a scan 390")
        page.screenshot(path=str(shots() / "document-sent-390.png"), full_page=True)
        # The customer opens the scan they sent: the real JPEG comes back.
        href = page.locator("section.portal-docs a[href*='/file/']").first.get_attribute("href")
        status, cache, body = page.evaluate(
            "async (url) => { const r = await fetch(url); const b = new Uint8Array(await r.arrayBuffer());"
            " return [r.status, r.headers.get('cache-control'), Array.from(b)]; }", href)
        assert status == 200 and bytes(body) == scan.read_bytes() and cache == "private, no-store"

    from django_tenants.utils import tenant_context

    from crm.documents.models import DocumentFile
    from tenants.models import Agency

    with committed():
        with tenant_context(Agency.objects.get(slug="alpha")):
            file = DocumentFile.objects.get(customer_id=traveler["customer"])
            assert (file.kind, file.status, file.content_type) == ("passport", "pending", "image/jpeg")
            assert file.travel_document.masked.startswith("E8765")
