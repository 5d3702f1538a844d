"""The API shell: error bodies, pagination, filtering, OpenAPI schema and docs."""
import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_validation_errors_are_per_field(api_client):
    response = api_client("alpha", "admin").post("/api/v1/staff/", {"email": "x@y.test"}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and set(error["fields"]) == {"full_name", "role"}


def test_not_found_has_the_same_shape(api_client):
    response = api_client("alpha", "admin").get("/api/v1/staff/999999/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_pagination_filtering_search_and_ordering(api_client):
    client = api_client("alpha", "admin")
    page = client.get("/api/v1/staff/?page_size=2&ordering=email").json()
    assert page["count"] >= 7 and len(page["results"]) == 2 and page["next"]
    assert [r["email"] for r in page["results"]] == sorted(r["email"] for r in page["results"])
    assert {r["role"] for r in client.get("/api/v1/staff/?role=finance").json()["results"]} == {"finance"}
    assert [r["email"] for r in client.get("/api/v1/staff/?search=call_center").json()["results"]] == ["call_center@alpha.test"]


def test_token_is_issued_for_email_and_password(api_client):
    from .conftest import password_for

    client = api_client("alpha")
    response = client.post("/api/v1/auth/token/", {"username": "finance@alpha.test", "password": password_for("alpha", "finance")})
    assert response.status_code == 200 and len(response.json()["token"]) == 40
    response = client.post("/api/v1/auth/token/", {"username": "finance@alpha.test", "password": "wrong"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "validation_error"


def test_me_lists_capabilities(api_client):
    me = api_client("alpha", "call_center").get("/api/v1/me/").json()
    assert me["agency"]["slug"] == "alpha" and "customers.view" in me["capabilities"]
    assert "documents.view" not in me["capabilities"]


def test_openapi_schema_and_docs_on_agency_hosts(api_client):
    client = api_client("alpha", "admin")
    schema = yaml.safe_load(client.get("/api/schema/").content)
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/staff/", "/api/v1/me/", "/api/v1/agency/"} <= set(schema["paths"])
    assert not any(p.startswith("/api/operator/") for p in schema["paths"])
    assert client.get("/api/docs/").status_code == 200


def test_operator_schema_on_the_platform_domain(operator_client):
    schema = yaml.safe_load(operator_client.get("/api/schema/").content)
    assert "/api/operator/agencies/" in schema["paths"]
    assert not any(p.startswith("/api/v1/") for p in schema["paths"])


def test_agency_settings_validate_fields(api_client):
    response = api_client("alpha", "admin").patch("/api/v1/agency/", {"currency": "RENMINBI", "time_zone": "Mars/Base"},
                                                  format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"currency", "time_zone"}
