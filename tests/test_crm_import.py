"""Customer import (CSV and Excel) and export (R-CUST-8): reading real-world spreadsheets, the dry
run, the import with de-duplication and audit, the background task, pages, API, roles, isolation."""
import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context
from openpyxl import Workbook, load_workbook

from crm.customers import imports, services
from crm.customers.models import ChangeLog, Customer, Employment, ImportJob, Phone
from crm.customers.snapshot import created_values
from crm.customers.tasks import check_import, import_customers

from .conftest import field_by_field, staff

pytestmark = pytest.mark.django_db

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "customers_zh.csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Uploads go to a temporary MEDIA_ROOT. TenantFileSystemStorage caches the root it derives from
    the setting (and its reset on setting changes misses MEDIA_ROOT), so drop that cache both ways."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    storages["default"].__dict__.pop("relative_media_root", None)
    yield
    storages["default"].__dict__.pop("relative_media_root", None)


def upload(agency, content: bytes, name: str, role: str = "admin") -> ImportJob:
    """Upload as the pages do, then let the worker read it (headers, preview, suggested mapping)."""
    with tenant_context(agency):
        job, _headers = imports.job_create(actor=staff(agency, role), upload=SimpleUploadedFile(name, content))
        work(job)
        job.refresh_from_db()
    return job


def work(job: ImportJob) -> dict:
    """Run what the pages or the API queued for this job (crm.check_import), as a worker would."""
    return check_import.apply(args=[job.pk, imports.state(job)["task"]["token"]]).get()


def sample_job(agency) -> ImportJob:
    return upload(agency, SAMPLE.read_bytes(), "客户名单.csv")


def xlsx_bytes(rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def errors_by_row(errors) -> dict:
    found = {}
    for error in errors:
        found.setdefault(error["row"], set()).add(error["field"])
    return found


# --- reading what agencies really send --------------------------------------------------------------

def test_mapping_is_guessed_from_chinese_and_english_headers():
    mapping = imports.suggest_mapping(["姓名", "手机号码", "联系电话", "E-mail", "出生日期", "性别", "工作单位", "部门",
                                       "职级", "护照号", "客户编号", "Remarks", "Extra stuff", "Surname", "Given name",
                                       "姓名 (2)", "订票人"])
    assert mapping == {
        "姓名": "name", "手机号码": "phone", "联系电话": "phone", "E-mail": "email", "出生日期": "birthday",
        "性别": "gender", "工作单位": "company", "部门": "department", "职级": "job_grade", "护照号": "",
        "客户编号": "external_ref", "Remarks": "notes", "Extra stuff": "", "Surname": "latin_surname",
        "Given name": "latin_given", "姓名 (2)": "", "订票人": "is_booker"}


@pytest.mark.parametrize("value", ["1985-03-02", "1985/3/2", "1985.3.2", "1985年3月2日", "19850302", "2 March 1985",
                                   "March 2, 1985", "2-Mar-1985", "02/03/1985 ", "1985-03-02 00:00:00",
                                   datetime(1985, 3, 2, 0, 0), date(1985, 3, 2), "31108"])
def test_dates_in_every_shape(value):
    if value in ("02/03/1985 ",):  # day and month both ≤ 12: ambiguous, refused
        with pytest.raises(ValueError):
            imports.parse_date(value)
        return
    assert imports.parse_date(value) == date(1985, 3, 2)


def test_csv_in_gb18030_and_utf8_with_bom_read_the_same(tmp_path):
    text = "姓名,手机\n王芳,13800138000\n\n李雷,13900139000\n"
    for encoding in ("gb18030", "utf-8-sig", "utf-8"):
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        headers, rows = imports.read_rows(path, "x.csv")
        rows = list(rows)
        assert headers == ["姓名", "手机"]
        assert [(r.number, r["姓名"]) for r in rows] == [(2, "王芳"), (4, "李雷")]  # blank row 3 skipped


# --- the dry run ------------------------------------------------------------------------------------

def test_a_page_that_loaded_the_job_before_the_worker_read_it_still_shows_the_guessed_mapping(alpha):
    """The race CI met: the page loads the job (no mapping yet), the worker reads the file, then the page
    reads the state and finds headers. It must show the worker's guess, not every column left out."""
    with tenant_context(alpha):
        job, _headers = imports.job_create(actor=staff(alpha, "admin"),
                                           upload=SimpleUploadedFile("客户名单.csv", SAMPLE.read_bytes()))
        loaded_early = ImportJob.objects.get(pk=job.pk)
        assert loaded_early.mapping == {}
        work(job)
        headers, _rows = imports.preview(loaded_early)
    assert headers and loaded_early.mapping[headers[1]] == "name"


def test_dry_run_reports_every_bad_row_and_writes_nothing(alpha):
    job = sample_job(alpha)
    with tenant_context(alpha):
        before = Customer.objects.count()
        report = imports.job_check(job, mapping=job.mapping)
        assert Customer.objects.count() == before and not ChangeLog.objects.exists()
        job.refresh_from_db()
    assert job.status == "checked" and job.total_rows == 9
    assert (report["create"], report["update"], report["skip"], report["new_companies"]) == (4, 0, 5, 1)
    assert errors_by_row(report["errors"]) == {6: {"name"}, 7: {"birthday"}, 8: {"phone"}, 9: {"email"},
                                               10: {"phone"}}
    duplicate = next(e for e in report["errors"] if e["row"] == 10)
    assert "row 2" in duplicate["message"]


def test_unknown_or_incomplete_mapping_is_refused(alpha):
    job = sample_job(alpha)
    with tenant_context(alpha), pytest.raises(Exception) as caught:
        imports.job_check(job, mapping={**job.mapping, "姓名": "", "编号": "shoe_size"})
    messages = " ".join(caught.value.message_dict["mapping"])
    assert "name" in messages and "shoe_size" in messages


# --- the import -------------------------------------------------------------------------------------

def test_import_creates_customers_links_the_company_once_and_audits(alpha):
    job = sample_job(alpha)
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        imports.run(job)
        assert (job.created_count, job.updated_count, job.processed_rows) == (4, 0, 9)
        assert set(errors_by_row(job.errors)) == {6, 7, 8, 9, 10}
        wang = Customer.objects.get(external_ref="C001")
        assert (wang.name, wang.latin_surname, wang.latin_given, wang.gender, wang.birthday, wang.source) == (
            "王芳", "WANG", "Fang", "F", date(1985, 3, 2), "import")
        assert wang.tags == ["VIP", "常旅客"] and wang.notes == "喜欢靠窗"
        assert list(wang.phones.values_list("number", flat=True)) == ["+8613800138000", "+861065529988"]
        assert list(wang.emails.values_list("address", flat=True)) == ["wang.fang@example.com"]
        assert "阿尔法科技有限公司" in wang.search_text and "fang wang" in wang.search_text
        companies = Customer.objects.filter(kind="company", name="阿尔法科技有限公司")
        assert companies.count() == 1
        links = {e.person.name: (e.department, e.job_grade) for e in Employment.objects.filter(company=companies[0])}
        assert links == {"王芳": ("销售部", "P5"), "李雷": ("财务部", "P3")}
        assert Customer.objects.get(external_ref="C003").birthday == date(1985, 3, 2)
        assert not Customer.objects.filter(name__in=["赵敏", "钱进", "孙丽", "周杰"]).exists()  # never half-written
        created = ChangeLog.objects.get(customer=wang)  # a creation is one entry with every value
        assert (created.field, created.via, created.actor) == ("created", "import", admin)
        values = created_values(created.new)
        assert set(values) >= {"kind", "name", "latin_surname", "latin_given", "gender", "birthday", "phones", "emails"}
        assert values["phones"] == "+8613800138000, +861065529988"
        company = ChangeLog.objects.get(customer=companies[0], field="created", via="import")
        assert created_values(company.new)["name"] == "阿尔法科技有限公司"


def test_importing_the_same_file_again_updates_instead_of_duplicating(alpha):
    first, again = sample_job(alpha), sample_job(alpha)
    with tenant_context(alpha):
        imports.run(first)
        count, logs = Customer.objects.count(), ChangeLog.objects.count()
        imports.run(again)
        assert (again.created_count, again.updated_count) == (0, 4)
        assert Customer.objects.count() == count
        assert ChangeLog.objects.count() == logs  # nothing changed, nothing to record
        assert Employment.objects.count() == 2


def test_a_changed_row_updates_the_customer_found_by_phone_and_records_old_and_new(alpha):
    with tenant_context(alpha):
        known = services.customer_create(actor=None, via="page", name="王小芳", phones=["13800138000"])
    job = upload(alpha, "姓名,手机,邮箱,生日\n王芳,+86 138-0013-8000,wf@example.com,1985-03-02\n".encode(), "fix.csv")
    with tenant_context(alpha):
        imports.run(job)
        assert (job.created_count, job.updated_count) == (0, 1)
        known.refresh_from_db()
        assert known.name == "王芳" and known.birthday == date(1985, 3, 2)
        assert list(known.emails.values_list("address", flat=True)) == ["wf@example.com"]
        name = ChangeLog.objects.get(customer=known, field="name", via="import")
        assert (name.old, name.new) == ("王小芳", "王芳")


def _record(customer) -> tuple:
    """What search matches and what the change log says of a customer (not who or when)."""
    customer.refresh_from_db()
    return customer.search_text, sorted(entry for c in ChangeLog.objects.filter(customer=customer)
                                        for entry in field_by_field(c.field, c.old, c.new))


def test_a_customer_typed_in_and_the_same_customer_imported_are_indexed_and_logged_alike(alpha, bravo):
    """crm.customers.snapshot serves the services and the import's COPY path: the same person, typed in
    (alpha) and imported (bravo), has the same search text and change-log rows, created and then changed."""
    with tenant_context(alpha):
        typed = services.customer_create(
            actor=None, via="page", name="王芳", latin_surname="WANG", latin_given="Fang", gender="F",
            birthday=date(1985, 3, 2), phones=["+86 138 0013 8000"], emails=["Wang.Fang@Example.com"],
            addresses=[{"line": "建国路 1 号", "city": "北京", "country": "CN"}])
        company = services.customer_create(actor=None, via="page", kind="company", name="阿尔法科技有限公司")
        services.employment_set(actor=None, company=company, person=typed)
        typed_then, typed_company = _record(typed), _record(company)
    job = upload(bravo, "姓名,姓拼音,名拼音,性别,生日,手机,邮箱,地址,城市,公司\n王芳,WANG,Fang,女,1985-03-02,"
                        "+86 138 0013 8000,Wang.Fang@Example.com,建国路 1 号,北京,阿尔法科技有限公司\n".encode(), "a.csv")
    with tenant_context(bravo):
        imports.run(job)
        imported = Customer.objects.get(name="王芳")
        assert _record(imported) == typed_then
        assert _record(Customer.objects.get(kind="company")) == typed_company
    assert "fang wang" in typed_then[0] and "阿尔法科技有限公司" in typed_then[0]
    assert ("addresses", "", "建国路 1 号, 北京") in typed_then[1] and ("gender", "", "F") in typed_then[1]

    with tenant_context(alpha):
        services.customer_update(actor=None, via="page", customer=typed, name="王芳芳",
                                 emails=["wang.fang@example.com", "wf@example.cn"])
        typed_now = _record(typed)
    again = upload(bravo, "姓名,手机,邮箱\n王芳芳,+8613800138000,wf@example.cn\n".encode(), "b.csv")
    with tenant_context(bravo):
        imports.run(again)
        assert (again.created_count, again.updated_count) == (0, 1)
        assert _record(imported) == typed_now
    assert ("emails", "wang.fang@example.com", "wang.fang@example.com, wf@example.cn") in typed_now[1]
    assert ("name", "王芳", "王芳芳") in typed_now[1]


def test_a_row_whose_phone_and_email_belong_to_two_customers_is_skipped(alpha):
    with tenant_context(alpha):
        services.customer_create(actor=None, via="page", name="甲", phones=["13800138000"])
        services.customer_create(actor=None, via="page", name="乙", emails=["yi@example.com"])
    job = upload(alpha, "姓名,手机,邮箱\n丙,13800138000,yi@example.com\n".encode(), "clash.csv")
    with tenant_context(alpha):
        imports.run(job)
        assert (job.created_count, job.updated_count) == (0, 0)
        assert job.errors == [{"row": 2, "field": "email", "message": "yi@example.com belongs to another customer, 乙.",
                               "text_kind": "import_taken", "text_params": {"value": "yi@example.com", "name": "乙"}}]
        assert not Customer.objects.filter(name="丙").exists()


def test_xlsx_with_date_cells_numeric_phones_and_extra_columns(alpha):
    content = xlsx_bytes([
        ["Name", "Mobile", "Date of birth", "Company", "Job grade", "Books for others", "Whatever", None],
        ["Alice Chen", 13700137000, datetime(1990, 5, 17), "ACME Ltd", "M2", "yes", "x"],
        [None, None, None, None, None, None, None],
        ["陈静", "13600136000", "1991/1/9", "ACME Ltd", "", "否", ""],
        ["Broken", 13500135000, "someday", "", "", "", ""],
    ])
    job = upload(alpha, content, "staff.xlsx")
    assert job.mapping == {"Name": "name", "Mobile": "phone", "Date of birth": "birthday", "Company": "company",
                           "Job grade": "job_grade", "Books for others": "is_booker", "Whatever": ""}
    with tenant_context(alpha):
        imports.run(job)
        assert (job.created_count, job.processed_rows) == (2, 3)
        assert errors_by_row(job.errors) == {5: {"birthday"}}
        alice = Customer.objects.get(name="Alice Chen")
        assert alice.birthday == date(1990, 5, 17)
        assert alice.phones.get().number == "+8613700137000"
        link = Employment.objects.get(person=alice)
        assert (link.company.name, link.job_grade, link.is_booker) == ("ACME Ltd", "M2", True)
        assert Customer.objects.filter(kind="company", name="ACME Ltd").count() == 1


def test_the_task_saves_progress_every_batch_and_finishes(alpha, monkeypatch):
    from caravan import leases

    lines = ["姓名,手机"] + [f"客户{i},139{i:08d}" for i in range(imports.BATCH_SIZE * 2 + 500)] + ["没有电话,12"]
    job = upload(alpha, "\n".join(lines).encode(), "big.csv")
    seen = []
    checkpoint = leases.Lease.checkpoint

    def watch(lease, **fields):  # the checkpoint, in each batch's transaction (caravan.leases)
        seen.append((ImportJob.objects.get(pk=lease.pk).status, fields["processed_rows"]))
        checkpoint(lease, **fields)

    monkeypatch.setattr(leases.Lease, "checkpoint", watch)
    with tenant_context(alpha):
        imports.job_start(job, mapping=job.mapping)
        result = import_customers.apply(args=[job.pk])
        job.refresh_from_db()
    assert result.successful()
    assert seen[:3] == [("running", imports.BATCH_SIZE), ("running", imports.BATCH_SIZE * 2),
                        ("running", imports.BATCH_SIZE * 2 + 501)]
    assert (job.status, job.total_rows, job.processed_rows) == ("done", imports.BATCH_SIZE * 2 + 501,
                                                                 imports.BATCH_SIZE * 2 + 501)
    assert (job.created_count, job.error_count) == (imports.BATCH_SIZE * 2 + 500, 1)
    assert job.errors[0]["row"] == imports.BATCH_SIZE * 2 + 502 and job.finished_at is not None


# --- pages ------------------------------------------------------------------------------------------------

def test_pages_upload_map_check_import_and_follow_progress(page_client, alpha, settings,
                                                           django_capture_on_commit_callbacks):
    client = page_client("alpha", "manager")
    assert client.get("/customers/import/").status_code == 200
    response = client.post("/customers/import/", {"file": SimpleUploadedFile("客户名单.csv", SAMPLE.read_bytes())})
    assert response.status_code == 302
    mapping_url = response["Location"]
    with tenant_context(alpha):
        job = ImportJob.objects.get()
    assert mapping_url == f"/customers/import/{job.pk}/mapping/"
    assert Path(job.file.path).is_relative_to(Path(settings.MEDIA_ROOT) / "alpha" / "imports")

    # The web process only stored the file: a worker reads it while the page polls.
    reading = client.get(mapping_url)
    assert reading.status_code == 200 and b'data-state="reading"' in reading.content and b"every 1s" in reading.content
    assert "王芳".encode() not in reading.content  # no preview: nothing was parsed here
    with tenant_context(alpha):
        assert work(job)["status"] == "done"
    polled = client.get(mapping_url, HTTP_HX_REQUEST="true")
    assert polled.status_code == 204 and polled["HX-Refresh"] == "true"

    page = client.get(mapping_url)
    html = page.content.decode()
    assert page.status_code == 200 and "王芳" in html and "阿尔法科技有限公司" in html  # the preview
    headers = page.context["form"].headers
    selects = {h: page.context["form"][f"col{i}"].value() for i, h in enumerate(headers)}
    assert selects["姓名"] == "name" and selects["手机"] == "phone" and selects["护照号"] == ""
    posted = {f"col{i}": value for i, value in enumerate(selects.values())}

    asked = client.post(mapping_url, {**posted, "action": "check"})
    assert asked.status_code == 302 and asked["Location"] == mapping_url + "#report"
    waiting = client.get(mapping_url, HTTP_HX_REQUEST="true")
    assert waiting.status_code == 200 and b'data-state="queued"' in waiting.content and b"every 1s" in waiting.content
    assert 'value="run"' not in client.get(mapping_url).content.decode()  # nothing to import before the report
    with tenant_context(alpha):
        assert work(job)["status"] == "done"
    assert client.get(mapping_url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    checked = client.get(mapping_url)
    assert checked.status_code == 200
    report = checked.context["report"]
    assert (report["create"], report["update"], report["skip"]) == (4, 0, 5)
    assert "1990-13-45" in checked.content.decode() and 'value="run"' in checked.content.decode()
    with tenant_context(alpha):
        assert not Customer.objects.filter(name="王芳").exists()

    with django_capture_on_commit_callbacks(execute=False) as queued:
        started = client.post(mapping_url, {**posted, "action": "run"})
    assert started.status_code == 302 and started["Location"] == f"/customers/import/{job.pk}/"
    assert len(queued) == 1
    progress = client.get(started["Location"], HTTP_HX_REQUEST="true")
    assert b'hx-trigger="every 1s"' in progress.content and b'data-status="running"' in progress.content

    with tenant_context(alpha):
        import_customers.apply(args=[job.pk])
    done = client.get(started["Location"], HTTP_HX_REQUEST="true")
    assert b"every 1s" not in done.content and b'data-status="done"' in done.content
    assert b'data-test="created">4<' in done.content and b'data-test="skipped">5<' in done.content
    full = client.get(started["Location"])
    assert b"Import finished" in full.content and b"/customers/?source=import" in full.content
    assert client.get(mapping_url).status_code == 302  # a finished import cannot be re-mapped


def test_upload_refuses_other_files_and_big_files(page_client):
    client = page_client("alpha", "admin")
    response = client.post("/customers/import/", {"file": SimpleUploadedFile("list.txt", b"a,b\n")})
    assert response.status_code == 400 and b'data-field="file"' in response.content
    assert b".csv or .xlsx" in response.content
    big = SimpleUploadedFile("big.csv", b"name\n" + b"x" * (imports.MAX_UPLOAD_BYTES + 1))
    response = client.post("/customers/import/", {"file": big})
    assert response.status_code == 400 and b"larger than 20 MB" in response.content
    response = client.post("/customers/import/", {"file": SimpleUploadedFile("fake.xlsx", b"not a workbook")})
    assert response.status_code == 400 and b"not an Excel" in response.content


def test_mapping_page_shows_field_errors(page_client, alpha):
    job = sample_job(alpha)
    response = page_client("alpha", "admin").post(f"/customers/import/{job.pk}/mapping/", {"action": "check"})
    assert response.status_code == 400 and b"holds the customer&#x27;s name" in response.content


@pytest.mark.parametrize("role,allowed", [("admin", True), ("manager", True), ("sales", False), ("call_center", False),
                                          ("service", False), ("finance", False)])
def test_only_admins_and_managers_import_and_export(page_client, api_client, alpha, role, allowed):
    job = sample_job(alpha)
    client = page_client("alpha", role)
    expected = 200 if allowed else 403
    assert client.get("/customers/import/").status_code == expected
    assert client.get("/customers/export/").status_code == expected
    assert client.get(f"/customers/import/{job.pk}/mapping/").status_code == expected
    api = api_client("alpha", role)
    assert api.get(f"/api/v1/imports/{job.pk}/").status_code == expected
    if not allowed:
        assert client.post("/customers/import/", {"file": SimpleUploadedFile("a.csv", b"name\nx\n")}).status_code == 403
        assert api.post(f"/api/v1/imports/{job.pk}/run/", {"mapping": job.mapping}, format="json").status_code == 403


def test_another_agencys_import_is_not_found(page_client, api_client, alpha, bravo):
    theirs = sample_job(bravo)
    client = page_client("alpha", "admin")
    assert client.get(f"/customers/import/{theirs.pk + 1000}/").status_code == 404
    with tenant_context(alpha):
        assert not ImportJob.objects.filter(pk=theirs.pk).exists()
    assert client.get(f"/customers/import/{theirs.pk}/").status_code == 404
    assert client.get(f"/customers/import/{theirs.pk}/mapping/").status_code == 404
    api = api_client("alpha", "admin")
    assert api.get(f"/api/v1/imports/{theirs.pk}/").status_code == 404
    assert api.post(f"/api/v1/imports/{theirs.pk}/check/", {"mapping": theirs.mapping}, format="json").status_code == 404
    assert api_client("alpha", "admin", on="bravo.localhost").get("/api/v1/imports/").status_code == 401


# --- export ----------------------------------------------------------------------------------------------

def test_export_holds_only_this_agencys_customers_with_chinese_intact(page_client, alpha, bravo):
    with tenant_context(alpha):
        services.customer_create(actor=None, via="page", name="王芳", phones=["13800138000"], tags=["VIP"])
        services.customer_create(actor=None, via="page", name="=HYPERLINK(\"x\")", kind="company")
    with tenant_context(bravo):
        services.customer_create(actor=None, via="page", name="布拉沃的客户", phones=["13900139000"])
    client = page_client("alpha", "manager")

    response = client.get("/customers/export/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    names = [row[2] for row in rows[1:]]
    assert "王芳" in names and "布拉沃的客户" not in names
    assert "'=HYPERLINK(\"x\")" in names  # never run as a formula

    assert [r[2] for r in csv.reader(io.StringIO(b"".join(
        client.get("/customers/export/?kind=person").streaming_content).decode("utf-8-sig")))][1:] == ["王芳"]

    response = client.get("/customers/export/?format=xlsx&tag=VIP")
    assert response.status_code == 200 and response["Content-Type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    values = list(sheet.values)
    assert [v[2] for v in values[1:]] == ["王芳"] and values[1][7] == "+8613800138000"


def test_exports_read_customers_page_by_page_in_order(alpha):
    """Keyset pages (crm.customers.exports.in_pages): every customer once, in order, whatever the page size;
    memory bounded without server-side cursors (PgBouncer's transaction pooling turns them off)."""
    from crm.customers import exports
    from crm.customers.models import Customer

    with tenant_context(alpha):
        made = [services.customer_create(actor=None, via="page", name=f"客户{i}").pk for i in range(7)]
        queryset = Customer.objects.filter(pk__in=made).order_by("pk")
        for size in (1, 2, 3, 7, 50):
            assert [c.pk for c in exports.in_pages(queryset, size)] == made
        rows = list(csv.reader(io.StringIO("".join(exports.export_customers_csv(queryset)).lstrip("\ufeff"))))
        assert [row[2] for row in rows[1:]] == [f"客户{i}" for i in range(7)]


def _as_imported(customer) -> dict:
    """Everything of a customer the import reads, to compare an exported and re-imported one field by field."""
    job = customer.employments.select_related("company").first()
    address = customer.addresses.first()
    return {"name": customer.name, "latin_surname": customer.latin_surname, "latin_given": customer.latin_given,
            "gender": customer.gender, "birthday": customer.birthday, "source": customer.source,
            "tags": sorted(customer.tags), "notes": customer.notes, "external_ref": customer.external_ref,
            "phones": sorted(p.number for p in customer.phones.all()),
            "emails": sorted(e.address for e in customer.emails.all()),
            "address": (address.line, address.city) if address else None,
            "job": (job.company.name, job.department, job.job_grade, job.title, job.is_booker) if job else None}


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_an_export_imports_back_as_updates(page_client, alpha, bravo, language):
    """Issue 20: an export carries every field the import reads, under headers it maps by itself, so it
    imports back: into the same agency as updates changing nothing, into a fresh agency as equal customers."""
    with tenant_context(alpha):
        wang = services.customer_create(
            actor=None, via="page", name="王芳", phones=["13800138000"], emails=["wf@example.com"],
            latin_surname="WANG", latin_given="Fang", gender="F", birthday=date(1985, 3, 2), source="wechat",
            tags=["VIP", "亲子"], notes="喜欢海岛\nprefers aisle seats", external_ref="OLD-0042",
            addresses=[{"line": "南京西路 1266 号", "city": "上海"}])
        acme = services.customer_create(actor=None, via="page", name="Acme 旅游科技", kind=Customer.Kind.COMPANY)
        services.employment_set(actor=None, company=acme, person=wang, department="市场部", job_grade="P7",
                                title="Marketing lead", is_booker=True)
        expected = _as_imported(wang)
    client = page_client("alpha", "admin")
    client.cookies["django_language"] = language
    content = client.get("/customers/export/?format=xlsx&q=王芳").content
    headers = next(load_workbook(io.BytesIO(content), read_only=True).active.values)
    assert ("名称" in headers) == (language == "zh-hans")
    job = upload(alpha, content, "export.xlsx")
    assert set(job.mapping.values()) == {"", *imports.FIELDS}, job.mapping  # every field, none by hand
    with tenant_context(alpha):
        imports.run(job)
        assert (job.created_count, job.updated_count, job.errors) == (0, 1, [])
        wang.refresh_from_db()
        assert _as_imported(wang) == expected

    csv_content = b"".join(client.get("/customers/export/?format=csv&q=王芳").streaming_content)
    for content, name in ((content, "export.xlsx"), (csv_content, "export.csv")):
        fresh = upload(bravo, content, name)
        assert set(fresh.mapping.values()) == {"", *imports.FIELDS}, fresh.mapping
        with tenant_context(bravo):
            imports.run(fresh)
            assert (fresh.created_count, fresh.errors) == (1, []), fresh.errors
            copy = Customer.objects.get(external_ref="OLD-0042")
            assert _as_imported(copy) == expected
            Customer.objects.filter(pk=copy.pk).delete()


# --- API ------------------------------------------------------------------------------------------------

def test_api_upload_check_run_and_progress(api_client, alpha, django_capture_on_commit_callbacks):
    client = api_client("alpha", "admin")
    response = client.post("/api/v1/imports/", {"file": SimpleUploadedFile("客户名单.csv", SAMPLE.read_bytes())},
                           format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "uploaded" and body["targets"]["company"]
    assert body["headers"] is None and body["check"] == {"state": "reading", "message": "", "report": None}
    url = f"/api/v1/imports/{body['id']}/"
    assert client.post(url + "check/", {"mapping": {"姓名": "name"}}, format="json").status_code == 409  # not read yet
    with tenant_context(alpha):
        work(ImportJob.objects.get(pk=body["id"]))
    body = client.get(url).json()
    assert body["headers"][:3] == ["编号", "姓名", "英文姓"] and body["mapping"]["手机"] == "phone"
    assert body["check"]["state"] == "ready"

    queued = client.post(url + "check/", {"mapping": body["mapping"]}, format="json")
    assert queued.status_code == 202 and queued["Location"] == url + "check/"
    assert queued.json()["state"] == "queued" and queued.json()["report"] is None
    with tenant_context(alpha):
        work(ImportJob.objects.get(pk=body["id"]))
    report = client.get(queued["Location"])
    assert report.status_code == 200 and report.json()["state"] == "checked"
    assert (report.json()["report"]["create"], report.json()["report"]["skip"]) == (4, 5)
    assert client.get(url).json()["status"] == "checked"

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(url + "run/", {"mapping": body["mapping"]}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "running" and len(queued) == 1
    assert client.post(url + "run/", {"mapping": body["mapping"]}, format="json").status_code == 409
    with tenant_context(alpha):
        import_customers.apply(args=[body["id"]])
    job = client.get(url).json()
    assert (job["status"], job["created_count"], job["processed_rows"]) == ("done", 4, 9)
    assert {e["row"] for e in job["errors"]} == {6, 7, 8, 9, 10}
    assert client.get("/api/v1/imports/").json()["results"][0]["id"] == body["id"]


def test_api_field_errors(api_client, alpha):
    client = api_client("alpha", "admin")
    response = client.post("/api/v1/imports/", {}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["error"]["fields"]
    response = client.post("/api/v1/imports/", {"file": SimpleUploadedFile("a.pdf", b"%PDF")}, format="multipart")
    assert response.status_code == 400 and ".csv or .xlsx" in response.json()["error"]["fields"]["file"][0]
    job = sample_job(alpha)
    response = client.post(f"/api/v1/imports/{job.pk}/check/", {"mapping": {"姓名": "phone"}}, format="json")
    assert response.status_code == 400 and "name" in response.json()["error"]["fields"]["mapping"][0]
    response = client.post(f"/api/v1/imports/{job.pk}/run/", {}, format="json")
    assert response.status_code == 400 and "mapping" in response.json()["error"]["fields"]


def test_the_list_page_exports_what_it_shows(page_client, alpha):
    html = page_client("alpha", "manager").get("/customers/?kind=person&tag=VIP").content.decode()
    assert 'href="/customers/export/?kind=person&amp;tag=VIP"' in html
    assert 'href="/customers/export/?kind=person&amp;tag=VIP&amp;format=xlsx"' in html
    assert "/customers/export/" not in page_client("alpha", "sales").get("/customers/").content.decode()


# --- housekeeping ------------------------------------------------------------------------------------------

def test_old_spreadsheets_are_deleted_and_only_this_agencys(alpha, bravo):
    from datetime import timedelta

    from django.utils import timezone

    from crm.customers.tasks import forget_old_import_files

    done, fresh, abandoned = sample_job(alpha), sample_job(alpha), sample_job(alpha)
    theirs = sample_job(bravo)
    long_ago = timezone.now() - imports.KEEP_FILES - timedelta(hours=1)
    with tenant_context(alpha):
        ImportJob.objects.filter(pk=done.pk).update(status="done", finished_at=long_ago, created_count=4)
        ImportJob.objects.filter(pk=fresh.pk).update(status="done", finished_at=timezone.now())
        ImportJob.objects.filter(pk=abandoned.pk).update(created_at=long_ago)
    with tenant_context(bravo):
        ImportJob.objects.filter(pk=theirs.pk).update(status="done", finished_at=long_ago)

    with tenant_context(alpha):
        assert forget_old_import_files.apply().get() == 2
        kept = ImportJob.objects.get(pk=done.pk)
        assert kept.file.name == "" and kept.created_count == 4  # the report stays
        assert not Path(done.file.path).exists() and Path(fresh.file.path).exists()
        assert not ImportJob.objects.filter(pk=abandoned.pk).exists() and not Path(abandoned.file.path).exists()
    with tenant_context(bravo):  # another agency's upload is not this agency's task
        assert Path(theirs.file.path).exists() and "/bravo/" in theirs.file.path
