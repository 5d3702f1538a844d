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
