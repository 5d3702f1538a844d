"""Input no database can hold gets a clear 400, never a 500 (issue 18; caravan/input.py): NUL bytes in
the query, a form or the path on every kind of page, and JSON numbers that overflow to infinity."""
import json

import pytest

pytestmark = pytest.mark.django_db

# The pages a probe found answering 500 to a NUL byte in their query.
PAGES = ["/search/", "/customers/", "/customers/similar/", "/trips/customers/", "/care/customers/",
         "/pipeline/list/", "/staff/", "/customers/export/"]


@pytest.mark.parametrize("path", PAGES)
def test_a_nul_byte_in_a_pages_query_is_a_400_naming_the_field(page_client, path):
    response = page_client("alpha", "admin").get(path, {"q": "王\x00芳"})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-field="q"' in body and "NUL" in body


def test_a_nul_byte_in_a_posted_form_or_the_path_is_a_400(page_client):
    client = page_client("alpha", "admin")
    posted = client.post("/customers/new/", {"name": "Li\x00Lei", "kind": "person"})
    assert posted.status_code == 400 and 'data-field="name"' in posted.content.decode()
    assert client.get("/customers/%00/").status_code == 400


def test_the_api_answers_nul_bytes_and_infinite_numbers_with_its_error_body(api_client):
    client = api_client("alpha", "admin")
    searched = client.get("/api/v1/customers/", {"search": "\x00"})
    assert searched.status_code == 400 and searched.json()["error"]["fields"] == {"search": [
        "This field holds a character that cannot be stored (a NUL byte). Remove it and try again."]}
    for raw in ('{"name": "Li Lei", "kind": "person", "tags": [1e999999]}', '{"name": NaN}', '{"name": -Infinity}'):
        created = client.post("/api/v1/customers/", raw, content_type="application/json")
        assert created.status_code == 400, raw
        assert created.json()["error"]["code"] == "parse_error"
    string_nul = client.post("/api/v1/customers/", json.dumps({"name": "Li\x00Lei", "kind": "person"}),
                             content_type="application/json")
    assert string_nul.status_code == 400 and "name" in string_nul.json()["error"]["fields"]
    # Ordinary numbers still parse.
    assert client.post("/api/v1/customers/", json.dumps({"name": "李雷", "kind": "person"}),
                       content_type="application/json").status_code == 201


def test_a_record_key_that_is_not_a_number_is_not_found(api_client):
    client = api_client("alpha", "admin")
    assert client.get("/api/v1/service-clocks/abc/").status_code == 404
    assert client.get("/api/v1/customers/1e3/").status_code == 404


def test_replacing_the_tier_rules_with_nothing_is_a_field_error(api_client):
    empty = api_client("alpha", "admin").put("/api/v1/tier-settings/", {}, format="json")
    assert empty.status_code == 400
    assert set(empty.json()["error"]["fields"]) == {"hysteresis_percent", "min_days_in_tier", "notify_owner"}


def test_a_csv_cell_past_the_csv_limit_is_a_file_error_on_the_check(api_client, alpha):
    """The file is read in a worker (crm.check_import): the cell past the csv module's limit fails the
    check with the line it is on, on the job the API shows, never a 500 or a job 'reading' for ever."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django_tenants.utils import tenant_context

    from crm.customers import imports
    from crm.customers.models import ImportJob
    from crm.customers.tasks import check_import

    def work(job_id):
        with tenant_context(alpha):
            job = ImportJob.objects.get(pk=job_id)
            check_import.apply(args=[job.pk, imports.state(job)["task"]["token"]]).get()

    client = api_client("alpha", "admin")
    content = "name,phone\n王芳,13800138000\n".encode() + b'"' + b"x" * 300_000 + b'",13900139000\n'
    created = client.post("/api/v1/imports/", {"file": SimpleUploadedFile("big-cell.csv", content)}, format="multipart")
    assert created.status_code == 201, created.content
    url = f"/api/v1/imports/{created.json()['id']}/"
    work(created.json()["id"])  # headers and preview read the first lines: the third is past the limit
    job = client.get(url).json()
    assert job["check"]["state"] == "failed" and job["check"]["report"] is None, job
    assert "line 3" in job["check"]["message"] + (job["failure"] or ""), job


def test_the_token_endpoint_throttles_by_the_address_our_proxies_saw(api_client, settings):
    """Invented X-Forwarded-For addresses do not reset the count (PROXY_COUNT=0: the connection's own)."""
    from django.core.cache import cache

    cache.delete_pattern("*throttle_login*")
    client = api_client("alpha")
    try:
        answers = [client.post("/api/v1/auth/token/", {"username": "admin@alpha.test", "password": "wrong"},
                               HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code for i in range(25)]
    finally:
        cache.delete_pattern("*throttle_login*")
    # Locked out after SIGNIN_FAILURE_LIMIT (10) failures from the address (accounts.signin), before DRF's 20/min.
    assert answers[:9] == [400] * 9 and set(answers[9:]) == {429}


def test_under_api_an_unmatched_path_or_a_refused_request_answers_the_error_body(api_client, settings):
    """A path no route matches and a request Django refuses before any view (too many fields) were
    HTML pages; the API's contract is its JSON error body (caravan.api.errors.not_found / bad_request)."""
    client = api_client("alpha", "admin")
    for path in ("/api/v1/service-clocks/abc/", "/api/v1/no-such-thing/", "/api/v1/customers/9%C3%A9/"):
        missing = client.get(path)
        assert missing.status_code == 404 and missing["Content-Type"] == "application/json", path
        assert missing.json()["error"]["code"] == "not_found"
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    crowded = client.post("/api/v1/customers/bulk/", {"ids": list(range(50))}, format="multipart")
    assert crowded.status_code == 400 and crowded.json()["error"]["code"] == "bad_request"
    # pages keep their HTML pages
    assert "text/html" in api_client("alpha", "admin").get("/no-such-page/")["Content-Type"]
