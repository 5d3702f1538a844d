"""The destination knowledge base (R-CUST-10): articles, search in Chinese, pinyin and English, visa notes
and staleness, the operators' shared base and copying from it, import, the API, and the fences."""
import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from crm.destinations import imports, selectors, services
from crm.destinations.models import STALE_AFTER_DAYS, Article, ArticleChange, ArticleImport, VisaNote
from crm.destinations.tasks import import_articles

from .conftest import OPERATOR, staff

pytestmark = pytest.mark.django_db

TOKYO = {"kind": "city", "country": "jp", "city": "Tokyo", "iata_codes": "NRT, HND", "title_en": "Tokyo",
         "title_zh": "东京", "overview_en": "Capital of Japan.", "overview_zh": "日本首都。", "tags": ["美食", "shopping"]}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _article(actor, **data):
    return services.article_save(actor=actor, article=None, data={**TOKYO, **data})


def test_article_save_validates_records_and_keeps_search_text(alpha):
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as refused:
            services.article_save(actor=admin, article=None, data={"kind": "city", "country": "XX", "iata_codes": "TOKYO"})
        errors = refused.value.message_dict
        assert {"country", "city", "iata_codes", "title_en"} <= set(errors)
        with pytest.raises(ValidationError) as refused:
            _article(admin, climate=[{"high": 10}] * 11)
        assert "climate" in refused.value.message_dict
        article = _article(admin, climate=[{"high": 10, "low": 2, "rain_mm": 50, "note": ""}] * 12)
        assert article.country == "JP" and article.iata_codes == ["NRT", "HND"]
        assert "东京" in article.search_text and "dongjing" in article.search_text and "tokyo" in article.search_text
        assert "日本" in article.search_text  # the country's Chinese name
        assert article.created_by == admin
        services.article_save(actor=staff(alpha, "sales"), article=article, data={"tips_zh": "早去浅草寺。"})
        change = article.changes.first()
        assert change.kind == ArticleChange.Kind.UPDATED and change.fields == ["tips_zh"]
        assert change.actor.email == "sales@alpha.test"
        assert [c.kind for c in article.changes.all()] == ["updated", "created"]


@pytest.mark.parametrize("query", ["东京", "东 京", "dongjing", "dong jing", "DJ", "tokyo", "Tokyyo", "NRT", "日本", "japan"])
def test_search_takes_chinese_pinyin_and_english(alpha, query):
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        tokyo = _article(admin)
        paris = _article(admin, country="FR", city="Paris", iata_codes="CDG", title_en="Paris", title_zh="巴黎", tags=[])
        found = list(selectors.search(query))
        assert tokyo in found and paris not in found


def test_article_for_place_and_customer(alpha):
    from crm.customers.models import Customer, Preferences
    from crm.trips.models import Trip

    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        tokyo = _article(admin)
        osaka = _article(admin, city="Osaka", iata_codes="KIX", title_en="Osaka", title_zh="大阪")
        japan = _article(admin, kind="country", city="", iata_codes="", title_en="Japan", title_zh="日本")
        for text in ("东京", "Tokyo", "Tokyo, Japan", "NRT", "东京五日游"):
            assert selectors.article_for_place(text) == tokyo, text
        assert selectors.article_for_place("KIX") == osaka
        assert selectors.article_for_place("日本") == japan
        assert selectors.article_for_place("Sapporo, Japan") == japan  # no city article: the country's
        assert selectors.article_for_place("Paris") is None
        customer = Customer.objects.create(name="王芳")
        Preferences.objects.create(customer=customer, interests=["日本"])
        for destination in ("东京", "Osaka", "Tokyo", "Paris"):
            Trip.objects.create(customer=customer, title=destination, destination=destination, currency="CNY")
        assert selectors.articles_for_customer(customer) == [japan, tokyo, osaka]


def test_visa_notes_staleness_and_documents(alpha):
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        article = _article(admin)
        with pytest.raises(ValidationError) as refused:
            services.visa_note_save(actor=admin, article=article, nationality="ZZ",
                                    data={"requirement": "maybe", "documents": ["passport", "toothbrush"]})
        assert {"nationality", "requirement", "documents"} <= set(refused.value.message_dict)
        note = services.visa_note_save(actor=admin, article=article, nationality="cn",
                                       data={"requirement": "visa", "stay_days": 15, "documents": ["passport", "photos"]})
        assert note.nationality == "CN" and note.checked_on is None and note.is_stale and article.is_stale
        assert list(selectors.stale_visa_notes()) == [note]
        note = services.visa_note_save(actor=admin, article=article, nationality="CN", data={"checked": True})
        assert note.checked_on == timezone.localdate() and note.checked_by == admin and not note.is_stale
        assert note.documents == ["passport", "photos"]  # a check changes nothing else
        assert selectors.visa_note_for(article, "cn") == note and selectors.visa_note_for(article, "US") is None
        VisaNote.objects.filter(pk=note.pk).update(checked_on=timezone.localdate() - timedelta(days=STALE_AFTER_DAYS + 1))
        assert list(selectors.stale_visa_notes()) == [note] and list(selectors.stale_articles()) == [article]
        assert article.changes.first().kind == ArticleChange.Kind.VISA_CHECKED


def test_attachments_bounds_and_files_per_agency(alpha, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"  # django-tenants' storage re-reads MEDIA_ROOT only then
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        article = _article(admin)
        for upload in (SimpleUploadedFile("x.svg", b"<svg onload=alert(1)>", "image/svg+xml"),
                       SimpleUploadedFile("x.pdf", b"MZ\x90\x00 not a pdf", "application/pdf")):
            with pytest.raises(ValidationError):
                services.attachment_add(actor=admin, article=article, upload=upload)
        big = SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * services.ATTACHMENT_MAX_BYTES, "application/pdf")
        with pytest.raises(ValidationError):
            services.attachment_add(actor=admin, article=article, upload=big)
        attachment = services.attachment_add(actor=admin, article=article, title="Map",
                                             upload=SimpleUploadedFile("map.png", PNG, "text/plain"))
        assert attachment.content_type == "image/png" and attachment.size == len(PNG)
        path = tmp_path / alpha.schema_name / attachment.file.name
        assert path.read_bytes() == PNG
        services.attachment_remove(actor=admin, attachment=attachment)
        assert not article.attachments.exists()


def _shared(operator, **data):
    with schema_context("public"):
        article = services.article_save(actor=operator, article=None, data={**TOKYO, **data})
        services.visa_note_save(actor=operator, article=article, nationality="CN",
                                data={"requirement": "visa", "documents": ["passport"], "checked": True})
        return article


def test_copy_from_the_shared_base(alpha, bravo):
    with schema_context("public"):
        operator = User.objects.get(email=OPERATOR)
    shared = _shared(operator, tips_en="Shared tip.")
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        assert shared.pk in [a.pk for a in selectors.shared_articles("东京")]
        assert not Article.objects.filter(tips_en="Shared tip.").exists()
        copy = services.article_copy_shared(actor=admin, shared_id=shared.pk)
        assert copy.copied_from == shared.pk and copy.tips_en == "Shared tip." and copy.search_text
        note = copy.visa_notes.get()
        assert note.requirement == "visa" and note.checked_by is None and note.checked_on == timezone.localdate()
        with pytest.raises(services.AlreadyCopied):
            services.article_copy_shared(actor=admin, shared_id=shared.pk)
        assert selectors.copies_of_shared() == {shared.pk: copy.pk}
    with schema_context("public"):
        services.article_save(actor=operator, article=Article.objects.get(pk=shared.pk), data={"tips_en": "New tip."})
        assert Article.objects.filter(pk=shared.pk).exists()
    with tenant_context(alpha):
        copy = services.article_update_from_shared(actor=admin, article=Article.objects.get(pk=copy.pk))
        assert copy.tips_en == "New tip."
    with tenant_context(bravo):  # the copy is alpha's alone
        assert not Article.objects.filter(copied_from=shared.pk).exists()


MARKDOWN = """---
country: JP
city: Kyoto
title_zh: 京都
title_en: Kyoto
tags: temples, 寺庙
---
## Overview
Old capital.

## 概况
古都。

## 交通
地铁和公交。
"""


def imported(actor, name: str, content: bytes) -> dict:
    """Upload as the page and the API do, then run the queued worker task (crm.import_articles); the report."""
    job = services.import_articles(actor=actor, upload=SimpleUploadedFile(name, content))
    assert job.status == ArticleImport.Status.QUEUED and job.report == {}
    import_articles.apply(args=[job.pk]).get()
    job.refresh_from_db()
    assert job.finished and not job.file  # the upload is removed once read
    assert job.status == (ArticleImport.Status.DONE if job.report["saved"] else ArticleImport.Status.FAILED)
    return job.report


def test_import_markdown_and_spreadsheet_all_or_nothing(alpha, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        report = imported(admin, "kyoto.md", MARKDOWN.encode())
        assert report["saved"] and report["created"] == 1 and not report["errors"]
        kyoto = Article.objects.get(city="Kyoto")
        assert (kyoto.overview_en, kyoto.overview_zh, kyoto.transport_zh) == ("Old capital.", "古都。", "地铁和公交。")
        assert kyoto.tags == ["temples", "寺庙"] and kyoto.changes.first().kind == ArticleChange.Kind.IMPORTED
        assert list(selectors.search("jingdu")) == [kyoto]
        # Again: the same place is updated, not duplicated.
        report = imported(admin, "kyoto.md", MARKDOWN.replace("Old capital.", "The old capital.").encode())
        assert report["updated"] == 1 and Article.objects.get(city="Kyoto").overview_en == "The old capital."

        good = "kind,country,city,title_en,title_zh,overview_en,visa_nationality,visa_requirement,visa_documents\n" \
               "city,TH,Bangkok,Bangkok,曼谷,Temples.,CN,on_arrival,passport photos\n"
        bad_rows = good + "city,XX,Nowhere,Nowhere,,,,,\ncity,FR,,,,,,,\n"
        report = imported(admin, "articles.csv", bad_rows.encode())
        assert not report["saved"] and report["created"] == 0
        where = {(e["where"], e["field"]) for e in report["errors"]}
        assert ("row 3", "country") in where and ("row 4", "city") in where and ("row 4", "title_en") in where
        assert not Article.objects.filter(city="Bangkok").exists()  # nothing half-applied
        report = imported(admin, "articles.csv", good.encode())
        assert report["saved"] and report["created"] == 1
        bangkok = Article.objects.get(city="Bangkok")
        assert bangkok.visa_notes.get().documents == ["passport", "photos"]
        with pytest.raises(ValidationError):
            services.import_articles(actor=admin, upload=SimpleUploadedFile("articles.exe", b"MZ"))
        with pytest.raises(ValidationError):  # the zip's directory is checked before it is queued
            services.import_articles(actor=admin, upload=SimpleUploadedFile("articles.zip", b"not a zip"))
        report = imported(admin, "bad.md", b"no header here")
        assert not report["saved"] and report["errors"][0]["where"] == "bad.md"
        assert ArticleImport.objects.count() == 5


def test_the_web_process_only_queues_the_import(alpha, settings, tmp_path):
    """The upload is stored and queued; nothing is parsed or saved until the worker runs the task."""
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        job = services.import_articles(actor=admin, upload=SimpleUploadedFile("kyoto.md", MARKDOWN.encode()))
        job.refresh_from_db()
        assert job.status == ArticleImport.Status.QUEUED and job.report == {} and job.created_by == admin
        assert job.file.read() == MARKDOWN.encode() and job.file.path.startswith(str(tmp_path))
        assert not Article.objects.filter(city="Kyoto").exists()
        # A worker that died mid-import: shown as failed after the time limit, nothing saved.
        ArticleImport.objects.filter(pk=job.pk).update(status=ArticleImport.Status.RUNNING,
                                                       started_at=timezone.now() - timedelta(hours=1))
        job = imports.current(ArticleImport.objects.get(pk=job.pk))
        assert job.status == ArticleImport.Status.FAILED and not job.report["saved"]
        assert ArticleImport.objects.get(pk=job.pk).status == ArticleImport.Status.FAILED
        # A message for an import no longer queued does nothing.
        assert import_articles.apply(args=[job.pk]).get()["taken"] is False
        assert not Article.objects.filter(city="Kyoto").exists()


def test_the_worker_parses_under_the_memory_limit(alpha, settings, tmp_path, monkeypatch):
    """A file that needs more memory than allowed fails with the reason, not the worker."""
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
    import contextlib

    from caravan import unpack

    inside = []

    @contextlib.contextmanager
    def watched_limit(*args, **kwargs):
        inside.append(True)
        try:
            yield
        finally:
            inside.pop()

    def exhausted(**kwargs):
        assert inside, "the file is parsed outside caravan.unpack.memory_limit()"
        raise MemoryError

    monkeypatch.setattr(unpack, "memory_limit", watched_limit)
    monkeypatch.setattr(imports, "import_file", exhausted)
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        job = services.import_articles(actor=admin, upload=SimpleUploadedFile("kyoto.md", MARKDOWN.encode()))
        import_articles.apply(args=[job.pk]).get()
        job.refresh_from_db()
        assert job.status == ArticleImport.Status.FAILED and not job.report["saved"]
        assert "PARSE_MAX_MEMORY_MB" in job.report["errors"][0]["message"]


# --- the API ---------------------------------------------------------------------------------------

def test_api_articles_search_visa_notes_and_schema(alpha, api_client):
    client = api_client("alpha", "sales")
    answer = client.post("/api/v1/destinations/articles/", {**TOKYO, "iata_codes": ["NRT"]}, format="json")
    assert answer.status_code == 201, answer.content
    pk = answer.json()["id"]
    assert answer.json()["created_by"]["full_name"] == "Sales of alpha"
    bad = client.post("/api/v1/destinations/articles/", {"country": "XX", "kind": "city"}, format="json")
    assert bad.status_code == 400 and {"country", "city"} <= set(bad.json()["error"]["fields"])
    for query in ("东京", "dongjing", "tokyo"):
        found = client.get("/api/v1/destinations/articles/", {"search": query}).json()
        assert [a["id"] for a in found["results"]] == [pk], query
    assert client.get("/api/v1/destinations/articles/", {"search": "巴黎"}).json()["results"] == []
    answer = client.post(f"/api/v1/destinations/articles/{pk}/visa-notes/",
                         {"nationality": "CN", "requirement": "visa", "documents": ["passport"], "checked": True},
                         format="json")
    assert answer.status_code == 200 and answer.json()["checked_by"]["full_name"] == "Sales of alpha"
    answer = client.patch(f"/api/v1/destinations/articles/{pk}/", {"tips_en": "Go early."}, format="json")
    assert answer.status_code == 200 and answer.json()["tips_en"] == "Go early."
    assert answer.json()["visa_notes"][0]["is_stale"] is False
    changes = client.get(f"/api/v1/destinations/articles/{pk}/changes/").json()["results"]
    assert [c["kind"] for c in changes] == ["updated", "visa_checked", "created"]
    # Finance reads but does not write; the call center reads.
    assert api_client("alpha", "finance").get(f"/api/v1/destinations/articles/{pk}/").status_code == 200
    assert api_client("alpha", "finance").patch(f"/api/v1/destinations/articles/{pk}/", {"tips_en": "x"},
                                                format="json").status_code == 403
    assert client.delete(f"/api/v1/destinations/articles/{pk}/visa-notes/CN/").status_code == 204
    assert client.delete(f"/api/v1/destinations/articles/{pk}/").status_code == 204
    schema = api_client("alpha").get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    for path in ("/api/v1/destinations/articles/", "/api/v1/destinations/shared/", "/api/v1/destinations/shared/{id}/copy/",
                 "/api/v1/destinations/articles/import/", "/api/v1/destinations/imports/{id}/"):
        assert path in schema, path


def test_api_shared_base_and_copy(alpha, api_client):
    with schema_context("public"):
        operator = User.objects.get(email=OPERATOR)
    shared = _shared(operator)
    client = api_client("alpha", "manager")
    listed = client.get("/api/v1/destinations/shared/", {"q": "dongjing"}).json()
    assert [a["id"] for a in listed] == [shared.pk] and listed[0]["copy_id"] is None
    answer = client.post(f"/api/v1/destinations/shared/{shared.pk}/copy/")
    assert answer.status_code == 201 and answer.json()["copied_from"] == shared.pk
    again = client.post(f"/api/v1/destinations/shared/{shared.pk}/copy/")
    assert again.status_code == 409 and again.json()["error"]["copy_id"] == answer.json()["id"]
    assert client.get(f"/api/v1/destinations/shared/{shared.pk}/").json()["copy_id"] == answer.json()["id"]
    assert client.post("/api/v1/destinations/shared/999999/copy/").status_code == 404
    assert api_client("alpha", "finance").post(f"/api/v1/destinations/shared/{shared.pk}/copy/").status_code == 403


def test_api_import(alpha, bravo, api_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
    client = api_client("alpha", "admin")
    answer = client.post("/api/v1/destinations/articles/import/",
                         {"file": SimpleUploadedFile("kyoto.md", MARKDOWN.encode())}, format="multipart")
    assert answer.status_code == 202, answer.content
    body = answer.json()
    assert body["status"] == "queued" and body["report"] is None
    assert answer["Location"].endswith(f"/api/v1/destinations/imports/{body['id']}/")
    with tenant_context(alpha):
        assert not Article.objects.filter(city="Kyoto").exists()  # not read by the web process
    status_url = f"/api/v1/destinations/imports/{body['id']}/"
    assert client.get(status_url).json()["status"] == "queued"
    with tenant_context(alpha):
        import_articles.apply(args=[body["id"]]).get()
    read = client.get(status_url).json()
    assert read["status"] == "done" and read["report"]["saved"] and read["report"]["created"] == 1
    assert read["report"]["errors"] == [] and len(read["report"]["articles"]) == 1
    bad = client.post("/api/v1/destinations/articles/import/",
                      {"file": SimpleUploadedFile("bad.md", b"no header")}, format="multipart").json()
    with tenant_context(alpha):
        import_articles.apply(args=[bad["id"]]).get()
    read = client.get(f"/api/v1/destinations/imports/{bad['id']}/").json()
    assert read["status"] == "failed" and not read["report"]["saved"] and read["report"]["errors"][0]["where"] == "bad.md"
    refused = client.post("/api/v1/destinations/articles/import/",
                          {"file": SimpleUploadedFile("x.exe", b"MZ")}, format="multipart")
    assert refused.status_code == 400
    # Fences: bravo (its host, its token) does not find alpha's import; finance may not read imports.
    assert api_client("bravo", "admin").get(status_url).status_code == 404
    assert api_client("alpha", "finance").get(status_url).status_code == 403


# --- fences ----------------------------------------------------------------------------------------

def test_fences_between_agencies_and_the_shared_base(alpha, bravo, api_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MULTITENANT_RELATIVE_MEDIA_ROOT = "%s"
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        article = _article(admin)
        attachment = services.attachment_add(actor=admin, article=article, upload=SimpleUploadedFile("m.png", PNG))
    connection.set_schema_to_public()
    base = f"/api/v1/destinations/articles/{article.pk}/"
    file_url = f"/api/v1/destinations/attachments/{attachment.pk}/file/"
    alpha_client = api_client("alpha", "sales")
    assert alpha_client.get(base).status_code == 200
    answer = alpha_client.get(file_url)
    assert answer.status_code == 200 and b"".join(answer.streaming_content) == PNG
    # Alpha's ids on bravo's host, with bravo's token: not found.
    bravo_client = api_client("bravo", "admin")
    for url in (base, file_url, f"{base}changes/"):
        assert bravo_client.get(url).status_code == 404, url
    assert bravo_client.patch(base, {"tips_en": "x"}, format="json").status_code == 404
    assert bravo_client.delete(f"/api/v1/destinations/attachments/{attachment.pk}/").status_code == 404
    # Alpha's token on bravo's host: refused.
    assert api_client("alpha", "sales", on="bravo.localhost").get(base).status_code == 401
    # The shared base is read-only to agencies: no write route; a copy lands in the agency only.
    with schema_context("public"):
        operator = User.objects.get(email=OPERATOR)
    shared = _shared(operator)
    for method in ("put", "patch", "delete"):
        assert getattr(bravo_client, method)(f"/api/v1/destinations/shared/{shared.pk}/").status_code in (403, 405)
    assert bravo_client.post("/api/v1/destinations/shared/", {**TOKYO}, format="json").status_code in (403, 405)
    with schema_context("public"):
        assert Article.objects.filter(pk=shared.pk, tips_en="").exists() and Article.objects.count() == 1
    # Anonymous: nothing.
    assert api_client("alpha").get(base).status_code == 401


# --- the operators' console ------------------------------------------------------------------------

def test_console_shared_base_pages(operator_client, page_client, alpha):
    form = {"action": "save", "kind": "city", "country": "JP", "city": "Osaka", "iata_codes": "KIX, ITM",
            "title_en": "Osaka", "title_zh": "大阪", "tags": "food, 美食", "overview_zh": "美食之都。",
            "climate": "\n".join(["9 / 2 / 45 / dry"] * 12)}
    bad = operator_client.post("/destinations/new/", {**form, "country": "", "title_en": "", "title_zh": ""})
    assert bad.status_code == 400
    answer = operator_client.post("/destinations/new/", form)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    with schema_context("public"):
        article = Article.objects.get(city="Osaka")
        assert article.iata_codes == ["KIX", "ITM"] and article.tags == ["food", "美食"]
        assert article.climate[0] == {"high": 9, "low": 2, "rain_mm": 45, "note": "dry"}
    page = operator_client.get("/destinations/", {"q": "daban"})
    assert page.status_code == 200 and "大阪" in page.content.decode()
    assert operator_client.get(f"/destinations/{article.pk}/").status_code == 200
    answer = operator_client.post(f"/destinations/{article.pk}/", {"action": "visa", "nationality": "CN",
                                                                  "requirement": "visa", "documents": ["passport"],
                                                                  "checked": "on"})
    assert answer.status_code == 302
    with schema_context("public"):
        assert article.visa_notes.get().checked_on == timezone.localdate()
    # Agencies' staff never reach the console (their session is not known on the platform domain).
    assert page_client("alpha", "admin", on="localhost").get("/destinations/").status_code in (302, 403)
    assert operator_client.post(f"/destinations/{article.pk}/", {"action": "delete"}).status_code == 302
    with schema_context("public"):
        assert not Article.objects.filter(pk=article.pk).exists()


# --- demo ------------------------------------------------------------------------------------------

def test_demo_articles_for_top_destinations_and_shared_base(alpha):
    from crm.customers.models import Customer
    from crm.destinations.demo import seed_destinations, seed_shared
    from crm.trips.models import Trip

    with tenant_context(alpha):
        customer = Customer.objects.create(name="李娜")
        for destination, times in (("泰国 普吉岛", 3), ("日本 东京 · 京都", 2), ("马尔代夫", 1), ("瑞士 少女峰", 4)):
            for _ in range(times):
                Trip.objects.create(customer=customer, title=destination, destination=destination, currency="CNY")
    counts = seed_destinations(alpha, limit=6)
    assert counts == {"articles": 3, "stale": 1}
    assert seed_destinations(alpha) == {"articles": 0}  # idempotent
    with tenant_context(alpha):
        assert [a.title_en for a in Article.objects.order_by("id")] == ["Phuket", "Tokyo", "Maldives"]
        assert all(a.title_zh and a.overview_en and a.overview_zh for a in Article.objects.all())
        stale = list(selectors.stale_articles())
        assert [a.title_en for a in stale] == ["Maldives"] and stale[0].is_stale
        assert selectors.article_for_place("日本 东京 · 京都").title_en == "Tokyo"
        assert VisaNote.objects.filter(nationality="CN").count() == 3
    assert seed_shared()["shared"] == 3
    with tenant_context(alpha):
        assert {a.title_zh for a in selectors.shared_articles()} == {"首尔", "曼谷", "迪拜"}
