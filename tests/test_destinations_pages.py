"""The destination knowledge base's agency pages (frontend/views/destinations.py): the list with live search,
tags and the stale-visa flag, an article in the reader's language first, the form's field errors, visa notes
and "mark checked", attachments behind a fenced view, the shared base's Copy, the import page; and where
staff meet it: the trip page's link and "Start checklist from visa notes", the customer card's panel."""
from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from accounts.models import User
from crm.customers import services as crm_services
from crm.customers.models import ChangeLog
from crm.destinations import services
from crm.destinations.models import Article, ArticleImport, Attachment, VisaNote
from crm.destinations.tasks import import_articles
from crm.trips import services as trip_services
from crm.trips.models import ChecklistItem, Trip

from .conftest import staff
from .test_trips_services import person

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
ROLES = ("admin", "manager", "sales", "call_center", "service", "finance")
WRITERS = {"admin", "manager", "sales", "service"}


def article(actor=None, **data) -> Article:
    fields = {"kind": "city", "country": "JP", "city": "Tokyo", "title_en": "Tokyo", "title_zh": "东京",
              "overview_en": "A huge, safe city.", "overview_zh": "安全的大都市。", "tags": ["family", "food"]}
    fields.update(data)
    return services.article_save(actor=actor, article=None, data=fields)


def visa_note(item: Article, nationality="CN", *, checked_days_ago=10, documents=("passport", "photos", "assets"),
              actor=None) -> VisaNote:
    data = {"requirement": "visa", "stay_days": 15, "documents": list(documents),
            "text_en": "Apply at the consulate.", "text_zh": "在领事馆申请。"}
    if checked_days_ago is not None:
        data["checked_on"] = timezone.localdate() - timedelta(days=checked_days_ago)
    return services.visa_note_save(actor=actor, article=item, nationality=nationality, data=data)


def html_of(response) -> str:
    return response.content.decode()


# --- pages per role -------------------------------------------------------------------------------

def test_every_role_reads_and_only_writers_write(page_client, alpha):
    with tenant_context(alpha):
        tokyo = article()
    for role in ROLES:
        client = page_client("alpha", role)
        listing = client.get("/destinations/")
        assert listing.status_code == 200, role
        assert f'href="/destinations/{tokyo.pk}/"' in html_of(listing)
        assert client.get(f"/destinations/{tokyo.pk}/").status_code == 200
        assert client.get("/destinations/shared/").status_code == 200
        writes = role in WRITERS
        assert client.get("/destinations/new/").status_code == (200 if writes else 403), role
        assert client.get(f"/destinations/{tokyo.pk}/edit/").status_code == (200 if writes else 403), role
        assert client.get("/destinations/import/").status_code == (200 if writes else 403), role
        assert ('data-test="edit"' in html_of(client.get(f"/destinations/{tokyo.pk}/"))) is writes
    assert page_client("alpha", "finance").post(f"/destinations/{tokyo.pk}/delete/").status_code == 403
    with tenant_context(alpha):
        assert Article.objects.filter(pk=tokyo.pk).exists()
    assert page_client("alpha").get("/destinations/").status_code == 302  # signed out: to the sign-in page
    nav = html_of(page_client("alpha", "finance").get("/"))
    assert 'href="/destinations/"' in nav


def test_list_searches_live_in_chinese_pinyin_english_filters_tags_and_flags_stale_visas(page_client, alpha):
    with tenant_context(alpha):
        tokyo = article()
        visa_note(tokyo, checked_days_ago=200)  # stale
        paris = article(country="FR", city="Paris", title_en="Paris", title_zh="巴黎", tags=["honeymoon"],
                        overview_en="Museums.", overview_zh="博物馆。")
        visa_note(paris, checked_days_ago=5)
    client = page_client("alpha", "sales")

    def rows(query: str, **headers) -> set[int]:
        html = html_of(client.get(f"/destinations/?{query}", **headers))
        return {a.pk for a in (tokyo, paris) if f'data-article="{a.pk}"' in html}

    live = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "destination-rows"}
    assert rows("") == {tokyo.pk, paris.pk}
    for query in ("q=东京", "q=dongjing", "q=tokyo", "q=dj"):
        assert rows(query, **live) == {tokyo.pk}, query
    assert rows("q=巴黎", **live) == {paris.pk}
    assert rows("tag=honeymoon") == {paris.pk}
    assert rows("q=巴黎&tag=honeymoon", **live) == {paris.pk} and rows("q=巴黎&tag=family", **live) == set()
    assert rows("stale=1") == {tokyo.pk}
    fragment = html_of(client.get("/destinations/?q=tokyo", **live))
    assert "<h1>" not in fragment and 'data-test="stale"' in fragment  # only the rows, with the flag
    assert html_of(client.get("/destinations/?q=nowhere-at-all", **live)).count('data-test="no-destinations"') == 1


def test_article_in_the_readers_language_first_with_the_other_a_click_away(page_client, alpha):
    with tenant_context(alpha):
        tokyo = article(lodging_en="Stay in Shinjuku.", lodging_zh="", transport_zh="坐地铁。", transport_en="",
                        climate=[{"high": 10 + m, "low": m, "rain_mm": 50, "note": "rainy" if m == 5 else ""}
                                 for m in range(12)])
        visa_note(tokyo, checked_days_ago=3, actor=staff(alpha, "service"))
        User.objects.filter(email="sales@alpha.test").update(language="zh-hans")
    english = html_of(page_client("alpha", "service").get(f"/destinations/{tokyo.pk}/"))
    overview = english.split('data-test="section-overview"')[1].split("</section>")[0]
    assert overview.index("A huge, safe city.") < overview.index("安全的大都市。")  # the other in a <details>
    assert 'data-test="other-language"' in overview
    transport = english.split('data-test="section-transport"')[1].split("</section>")[0]
    assert "坐地铁。" in transport and "Only in Chinese so far." in transport
    assert 'data-test="climate"' in english and "rainy" in english and "June" in english
    assert "Checked on" in english and "by Service of alpha" in english
    assert 'data-test="stale-warning"' not in english

    chinese = html_of(page_client("alpha", "sales").get(f"/destinations/{tokyo.pk}/"))
    overview = chinese.split('data-test="section-overview"')[1].split("</section>")[0]
    assert overview.index("安全的大都市。") < overview.index("A huge, safe city.")
    lodging = chinese.split('data-test="section-lodging"')[1].split("</section>")[0]
    assert "Stay in Shinjuku." in lodging and 'data-test="fallback"' in lodging
    assert "<h1 lang=\"zh-Hans\">东京" in chinese


def test_form_shows_field_errors_then_creates_edits_and_deletes(page_client, alpha):
    client = page_client("alpha", "sales")
    response = client.post("/destinations/new/", {"kind": "city", "country": "JP", "city": "", "title_en": "",
                                                   "title_zh": "", "iata_codes": "NRT, TOOLONG"})
    assert response.status_code == 400
    html = html_of(response)
    for field in ("title_en", "city", "iata_codes"):
        assert f'data-field="{field}"' in html, field
    response = client.post("/destinations/new/", {"kind": "city", "country": "JP", "city": "Osaka", "title_zh": "大阪",
                                                   "climate_0_high": "999"})
    assert response.status_code == 400 and 'data-field="climate_0_high"' in html_of(response)
    response = client.post("/destinations/new/", {
        "kind": "city", "country": "JP", "city": "Osaka", "title_zh": "大阪", "title_en": "Osaka",
        "iata_codes": "kix, itm", "tags": "food，family", "overview_zh": "美食之都。",
        "climate_0_high": "9", "climate_0_low": "2", "climate_0_rain_mm": "45", "climate_0_note": "dry"})
    assert response.status_code == 302
    with tenant_context(alpha):
        osaka = Article.objects.get(city="Osaka")
        assert osaka.iata_codes == ["KIX", "ITM"] and osaka.tags == ["food", "family"]
        assert osaka.climate[0] == {"high": 9, "low": 2, "rain_mm": 45, "note": "dry"} and len(osaka.climate) == 12
        assert osaka.created_by == staff(alpha, "sales")
    assert response["Location"] == f"/destinations/{osaka.pk}/"
    edit = html_of(client.get(f"/destinations/{osaka.pk}/edit/"))
    assert 'value="KIX, ITM"' in edit and "美食之都。" in edit
    response = client.post(f"/destinations/{osaka.pk}/edit/", {
        "kind": "city", "country": "JP", "city": "Osaka", "title_zh": "大阪", "title_en": "Osaka",
        "tips_en": "Eat in Dotonbori."})
    assert response.status_code == 302
    page = html_of(client.get(f"/destinations/{osaka.pk}/"))
    history = page.split('data-test="history"')[1].split("</ul>")[0]
    assert "Sales of alpha" in history and "Updated" in history and "Created" in history
    assert "Our tips (English)" in history
    response = client.post(f"/destinations/{osaka.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/destinations/"
    with tenant_context(alpha):
        assert not Article.objects.filter(pk=osaka.pk).exists()


def test_visa_notes_added_changed_and_marked_checked(page_client, alpha):
    with tenant_context(alpha):
        tokyo = article()
        old = visa_note(tokyo, checked_days_ago=400)
    client = page_client("alpha", "sales")
    page = html_of(client.get(f"/destinations/{tokyo.pk}/"))
    assert 'data-test="stale-warning"' in page and "Visa notes not checked for 180 days" in page
    response = client.post(f"/destinations/{tokyo.pk}/visa/", {"new-nationality": "US", "new-requirement": "",
                                                               "new-stay_days": "0"})
    assert response.status_code == 400
    assert 'data-field="requirement"' in html_of(response) and 'data-field="stay_days"' in html_of(response)
    response = client.post(f"/destinations/{tokyo.pk}/visa/", {
        "new-nationality": "US", "new-requirement": "none", "new-stay_days": "90", "new-text_en": "Visa-free.",
        "new-checked": "on"})
    assert response.status_code == 302
    # Changing a note keeps its nationality, whatever the form says.
    response = client.post(f"/destinations/{tokyo.pk}/visa/", {
        "note": old.pk, f"note{old.pk}-nationality": "FR", f"note{old.pk}-requirement": "e_visa",
        f"note{old.pk}-documents": ["passport", "photos"]})
    assert response.status_code == 302
    with tenant_context(alpha):
        us = VisaNote.objects.get(article=tokyo, nationality="US")
        assert us.checked_on == timezone.localdate() and us.checked_by == staff(alpha, "sales")
        old.refresh_from_db()
        assert old.nationality == "CN" and old.requirement == "e_visa" and old.documents == ["passport", "photos"]
        assert old.is_stale and not VisaNote.objects.filter(nationality="FR").exists()
    assert page_client("alpha", "finance").post(f"/destinations/visa/{old.pk}/checked/").status_code == 403
    response = client.post(f"/destinations/visa/{old.pk}/checked/")
    assert response.status_code == 302
    with tenant_context(alpha):
        old.refresh_from_db()
        assert old.checked_on == timezone.localdate() and not old.is_stale
    page = html_of(client.get(f"/destinations/{tokyo.pk}/"))
    assert 'data-test="stale-warning"' not in page and "by Sales of alpha" in page


def test_attachments_upload_download_remove_and_the_fence(page_client, alpha, bravo):
    with tenant_context(alpha):
        tokyo = article()
    client = page_client("alpha", "sales")
    refused = client.post(f"/destinations/{tokyo.pk}/attachments/",
                          {"file": SimpleUploadedFile("x.exe", b"MZ\x90\x00" * 10), "title": "Map"})
    assert refused.status_code == 400 and 'data-field="file"' in html_of(refused)
    response = client.post(f"/destinations/{tokyo.pk}/attachments/",
                           {"file": SimpleUploadedFile("map.png", PNG, content_type="image/png"), "title": "Metro map"})
    assert response.status_code == 302
    with tenant_context(alpha):
        attachment = Attachment.objects.get(article=tokyo)
        assert attachment.title == "Metro map" and attachment.content_type == "image/png"
    page = html_of(client.get(f"/destinations/{tokyo.pk}/"))
    assert f'href="/destinations/attachments/{attachment.pk}/"' in page and "/media/" not in page
    download = page_client("alpha", "finance").get(f"/destinations/attachments/{attachment.pk}/")
    assert download.status_code == 200 and b"".join(download.streaming_content) == PNG
    assert download["Content-Type"] == "image/png" and download["X-Content-Type-Options"] == "nosniff"
    # bravo's staff, on bravo's host, cannot fetch alpha's file by its id; nor a signed-out visitor on alpha's.
    with tenant_context(bravo):
        assert not Attachment.objects.filter(pk=attachment.pk).exists()
    assert page_client("bravo", "admin").get(f"/destinations/attachments/{attachment.pk}/").status_code == 404
    with tenant_context(bravo):
        assert not Article.objects.filter(pk=tokyo.pk).exists()
    assert page_client("bravo", "admin").get(f"/destinations/{tokyo.pk}/").status_code == 404
    assert page_client("alpha").get(f"/destinations/attachments/{attachment.pk}/").status_code == 302
    assert page_client("alpha", "finance").post(f"/destinations/attachments/{attachment.pk}/remove/").status_code == 403
    response = client.post(f"/destinations/attachments/{attachment.pk}/remove/")
    assert response.status_code == 302
    with tenant_context(alpha):
        assert not Attachment.objects.filter(pk=attachment.pk).exists()


def test_copy_from_the_shared_base_once(page_client, alpha):
    with schema_context(get_public_schema_name()):
        shared = article(country="TH", city="Bangkok", title_en="Bangkok", title_zh="曼谷", tags=["shared"])
        visa_note(shared, checked_days_ago=30)
    client = page_client("alpha", "sales")
    page = html_of(client.get("/destinations/shared/?q=曼谷"))
    assert f'data-shared="{shared.pk}"' in page and 'data-test="copy"' in page
    assert 'data-test="copy"' not in html_of(page_client("alpha", "finance").get("/destinations/shared/"))
    assert page_client("alpha", "finance").post(f"/destinations/shared/{shared.pk}/copy/").status_code == 403
    response = client.post(f"/destinations/shared/{shared.pk}/copy/")
    assert response.status_code == 302
    with tenant_context(alpha):
        copy = Article.objects.get(copied_from=shared.pk)
        assert copy.title_zh == "曼谷" and copy.visa_notes.get().nationality == "CN"
    assert response["Location"] == f"/destinations/{copy.pk}/"
    again = client.post(f"/destinations/shared/{shared.pk}/copy/")
    assert again.status_code == 302 and again["Location"] == f"/destinations/{copy.pk}/"
    with tenant_context(alpha):
        assert Article.objects.filter(copied_from=shared.pk).count() == 1
    page = html_of(client.get("/destinations/shared/"))
    assert 'data-test="copied"' in page and f'href="/destinations/{copy.pk}/"' in page
    missing = client.post("/destinations/shared/987654/copy/", follow=True)
    assert "There is no such article in the shared base." in html_of(missing)


def _import(client, alpha, name: str, content: bytes):
    """Upload on the page (stored and queued, not read), run the worker's task, then read the import's page."""
    response = client.post("/destinations/import/", {"file": SimpleUploadedFile(name, content)})
    assert response.status_code == 302, response.content
    url = response["Location"]
    pk = int(url.rstrip("/").rsplit("/", 1)[1])
    with tenant_context(alpha):
        assert ArticleImport.objects.get(pk=pk).status == "queued"
    waiting = client.get(url)  # before the worker: the progress, polled by htmx
    assert waiting.status_code == 200 and 'data-test="import-working"' in html_of(waiting)
    assert 'data-test="import-report"' not in html_of(waiting)
    poll = client.get(url, HTTP_HX_REQUEST="true")
    assert poll.status_code == 200 and f'hx-get="{url}"' in html_of(poll)
    with tenant_context(alpha):
        import_articles.apply(args=[pk]).get()
    poll = client.get(url, HTTP_HX_REQUEST="true")
    assert poll.status_code == 204 and poll["HX-Refresh"] == "true"  # done: the page reloads itself
    return client.get(url), url


def test_import_page_reports_per_row_and_saves_all_or_nothing(page_client, alpha, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
    client = page_client("alpha", "sales")
    markdown = ("---\ncountry: KR\ncity: Seoul\ntitle_zh: 首尔\ntitle_en: Seoul\ntags: food\n---\n\n"
                "## Overview\nPalaces and food.\n\n## 概况\n宫殿和美食。\n").encode()
    response = client.post("/destinations/import/", {"file": SimpleUploadedFile("seoul.md", markdown)})
    with tenant_context(alpha):  # the web process stored and queued it; nothing is read yet
        assert response.status_code == 302 and not Article.objects.filter(city="Seoul").exists()
        import_articles.apply(args=[ArticleImport.objects.latest("pk").pk]).get()
    response = client.get(response["Location"])
    assert response.status_code == 200 and 'data-saved="1"' in html_of(response)
    assert '<dd data-test="created">1</dd>' in html_of(response)
    with tenant_context(alpha):
        seoul = Article.objects.get(city="Seoul")
        assert seoul.overview_zh == "宫殿和美食。" and seoul.changes.filter(kind="imported").exists()
    csv = ("country,city,title_en,title_zh\nKR,Busan,Busan,釜山\nXX,Nowhere,Nowhere,\n").encode()
    response, url = _import(client, alpha, "more.csv", csv)
    html = html_of(response)
    assert 'data-saved="0"' in html and 'data-test="import-errors"' in html and "row 3" in html and "XX" in html
    assert 'data-test="import-working"' not in html
    with tenant_context(alpha):
        assert not Article.objects.filter(city="Busan").exists()  # nothing half-applied
    response = client.post("/destinations/import/", {"file": SimpleUploadedFile("notes.txt", b"hello")})
    assert response.status_code == 400 and 'data-field="file"' in html_of(response)
    # Fences: another agency does not find this import; a role that does not write may not open it.
    assert page_client("bravo", "admin").get(url).status_code == 404
    assert page_client("alpha", "finance").get(url).status_code == 403


# --- where staff meet it --------------------------------------------------------------------------

def _trip_to(destination: str, *travelers) -> Trip:
    trip = trip_services.trip_create(actor=None, customer=travelers[0], title="Japan in spring",
                                     destination=destination, depart_on=date(2031, 4, 1), return_on=date(2031, 4, 8))
    for traveler in travelers:
        if not trip.travelers.filter(customer=traveler).exists():
            trip_services.traveler_add(actor=None, trip=trip, customer=traveler)
    return trip


def test_trip_links_its_destination_and_starts_the_checklist_from_visa_notes(page_client, alpha):
    with tenant_context(alpha):
        tokyo = article()
        visa_note(tokyo, "CN", checked_days_ago=200, documents=("passport", "photos", "assets", "employment"))
        visa_note(tokyo, "US", checked_days_ago=20, documents=("passport",))
        wang = person("王芳")
        smith = person("John Smith")
        crm_services.document_add(actor=None, customer=smith, kind="passport", issuing_country="US",
                                  number="561234567", via=ChangeLog.Via.PAGE)
        lee = person("Lee Min")
        crm_services.document_add(actor=None, customer=lee, kind="passport", issuing_country="KR",
                                  number="M12345678", via=ChangeLog.Via.PAGE)
        trip = _trip_to("东京", wang, smith, lee)
        travelers = {t.customer_id: t for t in trip.travelers.all()}
        ChecklistItem.objects.create(traveler=travelers[wang.pk], document="passport")  # already asked for
    client = page_client("alpha", "sales")
    page = html_of(client.get(f"/trips/{trip.pk}/"))
    assert f'href="/destinations/{tokyo.pk}/"' in page and 'data-test="destination-link"' in page
    assert 'data-test="visa-stale-warning"' in page and 'data-test="checklist-from-visa-notes"' in page
    finance = html_of(page_client("alpha", "finance").get(f"/trips/{trip.pk}/"))
    assert 'data-test="destination-link"' in finance and 'data-test="checklist-from-visa-notes"' not in finance
    assert page_client("alpha", "finance").post(f"/trips/{trip.pk}/checklist-from-visa-notes/").status_code == 403

    response = client.post(f"/trips/{trip.pk}/checklist-from-visa-notes/", follow=True)
    assert response.status_code == 200
    html = html_of(response)
    assert "4 documents added to the checklists from the visa notes." in html
    assert "not checked for 180 days" in html and "South Korea" in html  # stale, and no note for KR
    with tenant_context(alpha):
        trip.refresh_from_db()
        assert trip.needs_visa
        docs = {cid: sorted(ChecklistItem.objects.filter(traveler=t).values_list("document", flat=True))
                for cid, t in travelers.items()}
        assert docs[wang.pk] == ["assets", "employment", "passport", "photos"]  # passport not twice
        assert docs[smith.pk] == ["passport"]
        assert docs[lee.pk] == sorted(trip_services.DEFAULT_DOCUMENTS)  # no KR note: the usual documents
        note = ChecklistItem.objects.filter(traveler=travelers[wang.pk], document="photos").get().note
        assert "Tokyo" in note and "(CN)" in note and "checked on" in note
    again = client.post(f"/trips/{trip.pk}/checklist-from-visa-notes/", follow=True)
    assert "0 documents added" in html_of(again)
    with tenant_context(alpha):
        assert ChecklistItem.objects.filter(traveler__trip=trip).count() == 4 + 1 + len(trip_services.DEFAULT_DOCUMENTS)


def test_trip_without_an_article_offers_to_write_one_prefilled(page_client, alpha, bravo):
    with tenant_context(alpha):
        trip = _trip_to("Reykjavik", person("Anna"))
    page = html_of(page_client("alpha", "sales").get(f"/trips/{trip.pk}/"))
    assert 'data-test="write-article"' in page and "/destinations/new/?place=Reykjavik" in page
    form = html_of(page_client("alpha", "sales").get("/destinations/new/?place=Reykjavik"))
    assert 'value="Reykjavik"' in form and '<option value="IS" selected>' in form  # the place read: Iceland
    form = html_of(page_client("alpha", "sales").get("/destinations/new/?place=大阪"))
    assert 'name="city" value="Osaka"' in form and 'value="大阪"' in form and '<option value="JP" selected>' in form
    assert page_client("bravo", "sales").post(f"/trips/{trip.pk}/checklist-from-visa-notes/").status_code == 404


def test_customer_card_shows_a_destinations_panel(page_client, alpha, bravo):
    with tenant_context(alpha):
        tokyo = article()
        visa_note(tokyo, checked_days_ago=300)
        wang = person("王芳")
        _trip_to("Tokyo, Japan", wang)
        nobody = person("李雷")
    client = page_client("alpha", "call_center")
    card = html_of(client.get(f"/customers/{wang.pk}/"))
    assert f'hx-get="/customers/{wang.pk}/destinations/"' in card
    panel = html_of(client.get(f"/customers/{wang.pk}/destinations/", HTTP_HX_REQUEST="true"))
    assert 'data-test="customer-destinations"' in panel and f'href="/destinations/{tokyo.pk}/"' in panel
    assert "To check" in panel
    empty = html_of(client.get(f"/customers/{nobody.pk}/destinations/"))
    assert "No articles for this customer" in empty
    assert page_client("bravo", "admin").get(f"/customers/{wang.pk}/destinations/").status_code == 404
