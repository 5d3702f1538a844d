"""Customer 360 pages, part 2: the card's documents, profile and company sections, merge, handover."""
import re
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django_tenants.utils import tenant_context

from crm.customers import services
from crm.customers.models import (ChangeLog, Contact, Customer, DocumentReveal, Employment, FamilyDate, Handover,
                        LoyaltyMembership, Preferences, TravelDocument)

from .conftest import staff

pytestmark = pytest.mark.django_db
PAGE = ChangeLog.Via.PAGE
HX = {"HTTP_HX_REQUEST": "true"}
NUMBER = "E12345678"


def make(agency, name="张伟", **kw):
    kw.setdefault("phones", [])
    with tenant_context(agency):
        customer = services.customer_create(actor=None, via=PAGE, name=name, **kw)
    connection.set_schema_to_public()
    return customer


def add_document(agency, customer, number=NUMBER, **kw):
    kw.setdefault("kind", "passport")
    kw.setdefault("issuing_country", "CN")
    with tenant_context(agency):
        document = services.document_add(actor=None, customer=customer, number=number, via=PAGE, **kw)
    connection.set_schema_to_public()
    return document


def in_alpha(alpha, fn):
    with tenant_context(alpha):
        result = fn()
    connection.set_schema_to_public()
    return result


# --- documents ------------------------------------------------------------------------------------

def test_documents_section_is_masked_with_expiry_badges(page_client, alpha):
    customer = make(alpha)
    add_document(alpha, customer, expires_on=date.today() + timedelta(days=90))
    add_document(alpha, customer, number="G87654321", kind="hk_macau", expires_on=date.today() - timedelta(days=1))
    response = page_client("alpha", "sales").get(f"/customers/{customer.pk}/documents/", **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html and 'id="customer-documents"' in html
    assert "E1234****" in html and "G8765****" in html
    assert NUMBER not in html and "G87654321" not in html
    assert "expires within 6 months" in html and ">expired<" in html
    assert "Show number" in html and "Add document" in html


@pytest.mark.parametrize("role", ["call_center", "finance"])
def test_documents_are_refused_without_documents_view(page_client, alpha, role):
    customer = make(alpha)
    document = add_document(alpha, customer)
    client = page_client("alpha", role)
    assert client.get(f"/customers/{customer.pk}/documents/").status_code == 403
    response = client.post(f"/customers/{customer.pk}/documents/add/",
                           {"kind": "passport", "issuing_country": "CN", "number": "E99999999"})
    assert response.status_code == 403
    assert client.post(f"/documents/{document.pk}/reveal/", **HX).status_code == 403
    assert in_alpha(alpha, lambda: (TravelDocument.objects.count(), DocumentReveal.objects.count())) == (1, 0)


def test_reveal_shows_the_full_number_and_is_recorded(page_client, alpha):
    document = add_document(alpha, make(alpha))
    client = page_client("alpha", "sales")
    assert client.get(f"/documents/{document.pk}/reveal/").status_code == 405
    response = client.post(f"/documents/{document.pk}/reveal/", **HX)
    assert response.status_code == 200 and NUMBER in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    reveal = in_alpha(alpha, lambda: DocumentReveal.objects.get(document=document))
    assert reveal.user_id == staff(alpha, "sales").pk and reveal.via == PAGE


def test_add_document_from_the_card(page_client, alpha):
    customer = make(alpha)
    response = page_client("alpha", "service").post(f"/customers/{customer.pk}/documents/add/", {
        "kind": "passport", "issuing_country": "cn", "number": "e 1234 5678", "issued_on": "2020-01-02",
        "expires_on": "2030-01-01", "valid_for": ""}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "E1234****" in html and NUMBER not in html
    document = in_alpha(alpha, lambda: TravelDocument.objects.get(customer=customer))
    assert (document.issuing_country, document.expires_on) == ("CN", date(2030, 1, 1))
    log = in_alpha(alpha, lambda: ChangeLog.objects.get(customer=customer, field="documents"))
    assert log.via == PAGE and log.actor_id == staff(alpha, "service").pk
    # Opened without htmx, a successful post goes back to the section.
    response = page_client("alpha", "service").post(f"/customers/{customer.pk}/documents/add/", {
        "kind": "visa", "issuing_country": "JP", "number": "V7654321", "valid_for": "jp"})
    assert response.status_code == 302 and response["Location"] == f"/customers/{customer.pk}/documents/"


def test_duplicate_document_names_the_holder_and_saves_nothing(page_client, alpha):
    holder = make(alpha, "王芳")
    add_document(alpha, holder)
    other = make(alpha, "李娜")
    data = {"kind": "passport", "issuing_country": "CN", "number": "E1234-5678"}
    response = page_client("alpha", "sales").post(f"/customers/{other.pk}/documents/add/", data, **HX)
    assert response.status_code == 200  # htmx swaps only 2xx: the section comes back with the message
    html = response.content.decode()
    assert "already on file for" in html and "王芳" in html and f'href="/customers/{holder.pk}/"' in html
    assert "Nothing was saved" in html and NUMBER not in html and "E1234-5678" not in html
    assert in_alpha(alpha, lambda: TravelDocument.objects.count()) == 1
    assert page_client("alpha", "sales").post(f"/customers/{other.pk}/documents/add/", data).status_code == 400


def test_document_field_errors(page_client, alpha):
    customer = make(alpha)
    response = page_client("alpha", "sales").post(f"/customers/{customer.pk}/documents/add/", {
        "kind": "passport", "issuing_country": "CHN", "number": "12", "issued_on": "2024-05-01",
        "expires_on": "2024-01-01"})
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("number", "issuing_country", "expires_on"):
        assert f'data-field="{field}"' in html
    assert "two-letter country code" in html
    assert in_alpha(alpha, lambda: TravelDocument.objects.count()) == 0


# --- profile: preferences, loyalty, family dates ----------------------------------------------------

def test_preferences_edit(page_client, alpha):
    customer = make(alpha)
    client = page_client("alpha", "call_center")
    response = client.post(f"/customers/{customer.pk}/profile/preferences/", {
        "airlines": "ca, mu，CZ", "seat": "aisle", "meal": "AVML", "cabin": "business", "aircraft_size": "wide",
        "hotel_chains": "Marriott, 锦江", "room_type": "King", "interests": ["food", "golf"],
        "price_sensitivity": "low", "budget_per_trip": "8000"}, **HX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "CA, CZ, MU" in html and "Food and wine, Golf" in html and "Asian vegetarian" in html and "锦江" in html
    prefs = in_alpha(alpha, lambda: Preferences.objects.get(customer=customer))
    assert prefs.airlines == ["CA", "CZ", "MU"] and prefs.interests == ["food", "golf"] and prefs.budget_per_trip == 8000
    # The edit form comes back filled in.
    html = client.get(f"/customers/{customer.pk}/profile/").content.decode()
    assert 'value="CA, CZ, MU"' in html and re.search(r'value="golf"[^>]*checked', html)


def test_preferences_bad_airline_code_is_a_field_error(page_client, alpha):
    customer = make(alpha)
    response = page_client("alpha", "sales").post(f"/customers/{customer.pk}/profile/preferences/",
                                                  {"airlines": "CA, AIRCHINA", "interests": ["moon"]})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-field="interests"' in html
    response = page_client("alpha", "sales").post(f"/customers/{customer.pk}/profile/preferences/",
                                                  {"airlines": "CA, AIRCHINA"}, **HX)
    assert response.status_code == 200 and 'data-field="airlines"' in response.content.decode()
    assert "IATA airline codes" in response.content.decode()
    assert in_alpha(alpha, lambda: Preferences.objects.filter(customer=customer).exists()) is False


def test_loyalty_and_family_dates(page_client, alpha):
    customer = make(alpha)
    client = page_client("alpha", "sales")
    response = client.post(f"/customers/{customer.pk}/profile/loyalty/", {"programme": "CA", "number": "CA123456",
                                                                          "tier": "金卡"}, **HX)
    assert response.status_code == 200 and "CA123456" in response.content.decode()
    response = client.post(f"/customers/{customer.pk}/profile/family-dates/", {"label": "妻子生日", "date": "1990-03-08"}, **HX)
    assert response.status_code == 200 and "妻子生日" in response.content.decode() and "8 Mar 1990" in response.content.decode()
    assert in_alpha(alpha, lambda: (LoyaltyMembership.objects.get(customer=customer).tier,
                                    FamilyDate.objects.get(customer=customer).date)) == ("金卡", date(1990, 3, 8))

    response = client.post(f"/customers/{customer.pk}/profile/loyalty/", {"programme": "MU", "number": ""})
    assert response.status_code == 400 and 'data-field="number"' in response.content.decode()
    response = client.post(f"/customers/{customer.pk}/profile/family-dates/", {"label": " ", "date": "1990-13-01"})
    assert response.status_code == 400
    assert 'data-field="label"' in response.content.decode() and 'data-field="date"' in response.content.decode()


def test_profile_is_read_only_without_customers_edit(page_client, alpha):
    customer = make(alpha)
    client = page_client("alpha", "finance")
    html = client.get(f"/customers/{customer.pk}/profile/").content.decode()
    assert "Travel preferences" in html and "Edit preferences" not in html and "Add membership" not in html
    for url, data in (("preferences", {"seat": "aisle"}), ("loyalty", {"programme": "CA", "number": "1"}),
                      ("family-dates", {"label": "x", "date": "2000-01-01"})):
        assert client.post(f"/customers/{customer.pk}/profile/{url}/", data).status_code == 403
    assert in_alpha(alpha, lambda: Preferences.objects.count() + LoyaltyMembership.objects.count()) == 0


# --- company links --------------------------------------------------------------------------------

def test_link_an_existing_person_to_a_company(page_client, alpha):
    company = make(alpha, "ACME 贸易", kind="company")
    person = make(alpha, "张伟", phones=["138 0013 8000"])
    client = page_client("alpha", "sales")
    results = client.get(f"/customers/{company.pk}/company/people/", {"q": "张伟"}, **HX).content.decode()
    assert f'name="person" value="{person.pk}"' in results
    before = in_alpha(alpha, Customer.objects.count)
    response = client.post(f"/customers/{company.pk}/company/link/", {
        "person": person.pk, "job_grade": "P7", "department": "销售部", "title": "经理",
        "is_traveler": "on", "is_booker": "on"}, **HX)
    assert response.status_code == 200
    assert "张伟" in response.content.decode() and "销售部" in response.content.decode()
    assert in_alpha(alpha, Customer.objects.count) == before  # nobody entered twice
    link = in_alpha(alpha, lambda: Employment.objects.get(company=company, person=person))
    assert (link.job_grade, link.is_traveler, link.is_booker) == ("P7", True, True)
    html = client.get(f"/customers/{person.pk}/company/").content.decode()
    assert "Corporate accounts" in html and "ACME 贸易" in html and "P7" in html and "Link a person" not in html
    # Found by the company's name now, too.
    assert f'value="{person.pk}"' in client.get(f"/customers/{company.pk}/company/people/", {"q": "acme"}).content.decode()


def test_create_a_person_inline_on_the_company(page_client, alpha):
    company = make(alpha, "ACME 贸易", kind="company")
    client = page_client("alpha", "sales")
    response = client.post(f"/customers/{company.pk}/company/link/", {
        "name": "李娜", "phones": "139 1234 5678", "emails": "li.na@acme.cn", "department": "财务", "is_traveler": "on"})
    assert response.status_code == 302 and response["Location"] == f"/customers/{company.pk}/company/"
    person = in_alpha(alpha, lambda: Customer.objects.get(name="李娜"))
    assert person.kind == "person"
    assert in_alpha(alpha, lambda: Employment.objects.filter(company=company, person=person, department="财务").exists())

    # The same phone again: nothing created, the person on file is offered instead.
    response = client.post(f"/customers/{company.pk}/company/link/", {"name": "Li Na", "phones": "+86 139-1234-5678"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200 and "already on file" in html and f'name="person" value="{person.pk}"' in html
    assert 'value="Li Na"' not in html  # the new-person fields start empty again
    assert in_alpha(alpha, lambda: Customer.objects.filter(kind="person").count()) == 1

    response = client.post(f"/customers/{company.pk}/company/link/", {"person": person.pk, "name": "李娜"})
    assert response.status_code == 400 and "not both" in response.content.decode()
    response = client.post(f"/customers/{company.pk}/company/link/", {"is_traveler": "on"})
    assert response.status_code == 400 and "Choose a person on file" in response.content.decode()
    response = client.post(f"/customers/{company.pk}/company/link/", {"name": "王五", "phones": "12"})
    assert response.status_code == 400 and 'data-field="phones"' in response.content.decode()
    response = client.post(f"/customers/{company.pk}/company/link/", {"name": "王五", "emails": "nope"})
    assert response.status_code == 400 and 'data-field="emails"' in response.content.decode()
    assert not in_alpha(alpha, lambda: Customer.objects.filter(name="王五").exists())


def test_company_links_need_customers_edit_to_change(page_client, alpha):
    company = make(alpha, "ACME", kind="company")
    person = make(alpha, "张伟")
    client = page_client("alpha", "finance")
    html = client.get(f"/customers/{company.pk}/company/").content.decode()
    assert "People at this company" in html and "Link a person" not in html
    assert client.post(f"/customers/{company.pk}/company/link/", {"person": person.pk}).status_code == 403


# --- merge -----------------------------------------------------------------------------------------

def test_merge_end_to_end(page_client, alpha):
    keep = make(alpha, "张伟", phones=["138 0013 8000"])
    drop = make(alpha, "张伟", phones=["139 0000 0001"], emails=["zw@example.cn"])
    add_document(alpha, drop)
    in_alpha(alpha, lambda: services.contact_add(actor=None, customer=drop, channel="call", summary="问机票价格"))
    client = page_client("alpha", "manager")

    page = client.get(f"/customers/{keep.pk}/merge/").content.decode()
    assert f"?other={drop.pk}" in page  # suggested: same name
    found = client.get(f"/customers/{keep.pk}/merge/", {"q": "zw@example.cn"}, **HX).content.decode()
    assert "<html" not in found and f"?other={drop.pk}" in found
    page = client.get(f"/customers/{keep.pk}/merge/", {"other": drop.pk}).content.decode()
    assert "+8613800138000" in page and "+8613900000001" in page and "E1234****" in page and NUMBER not in page
    assert f'name="keep" value="{drop.pk}"' in page

    response = client.post(f"/customers/{keep.pk}/merge/", {"other": drop.pk, "keep": keep.pk})
    assert response.status_code == 302 and response["Location"] == f"/customers/{keep.pk}/"
    with tenant_context(alpha):
        drop.refresh_from_db()
        assert drop.merged_into_id == keep.pk
        assert Contact.objects.get().customer_id == keep.pk
        assert TravelDocument.objects.get().customer_id == keep.pk
        assert set(keep.phones.values_list("number", flat=True)) == {"+8613800138000", "+8613900000001"}
        assert ChangeLog.objects.filter(customer=keep, field="merged", via=ChangeLog.Via.MERGE).exists()
    connection.set_schema_to_public()
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["张伟 was merged into 张伟."]

    again = client.post(f"/customers/{keep.pk}/merge/", {"other": drop.pk, "keep": keep.pk})
    assert again.status_code == 400 and "already merged" in again.content.decode()


def test_merge_errors_are_shown(page_client, alpha):
    person = make(alpha, "张伟")
    company = make(alpha, "张伟 Ltd", kind="company")
    client = page_client("alpha", "admin")
    response = client.post(f"/customers/{person.pk}/merge/", {"other": company.pk, "keep": person.pk})
    assert response.status_code == 400 and "cannot be merged" in response.content.decode()
    response = client.post(f"/customers/{person.pk}/merge/", {"other": company.pk})
    assert response.status_code == 400 and "Choose which record to keep" in response.content.decode()
    assert in_alpha(alpha, lambda: Customer.objects.filter(merged_into__isnull=False).count()) == 0


# --- handover --------------------------------------------------------------------------------------

def test_handover_end_to_end(page_client, alpha):
    # Recipients take turns in name order: "Call_Center of alpha", then "Service of alpha".
    leaving, first, second = staff(alpha, "sales"), staff(alpha, "call_center"), staff(alpha, "service")
    customers = [make(alpha, f"客户{i}", owner=leaving) for i in range(3)]
    client = page_client("alpha", "manager")

    page = client.get("/customers/handover/").content.decode()
    assert "Sales of alpha (3 customers)" in page
    preview = client.get("/customers/handover/", {"from_user": leaving.pk}, **HX).content.decode()
    assert "<html" not in preview and "account manager of 3 customers" in preview

    response = client.post("/customers/handover/", {"from_user": leaving.pk, "to_users": [first.pk, second.pk]}, follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 customers handed over: Call_Center of alpha got 2, Service of alpha got 1." in html
    with tenant_context(alpha):
        owners = sorted(Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list("owner_id", flat=True))
        assert owners == sorted([first.pk, first.pk, second.pk])
        logs = ChangeLog.objects.filter(via=ChangeLog.Via.HANDOVER, field="owner", old=leaving.email)
        assert logs.count() == 3 and {log.actor_id for log in logs} == {staff(alpha, "manager").pk}
        handover = Handover.objects.get()
        assert handover.summary == {str(first.pk): 2, str(second.pk): 1}
    connection.set_schema_to_public()
    assert "Call_Center of alpha (2), Service of alpha (1)" in client.get("/customers/handover/").content.decode()


def test_handover_field_errors(page_client, alpha):
    leaving = staff(alpha, "sales")
    client = page_client("alpha", "admin")
    response = client.post("/customers/handover/", {"from_user": leaving.pk})
    assert response.status_code == 400 and 'data-field="to_users"' in response.content.decode()
    response = client.post("/customers/handover/", {"from_user": leaving.pk, "to_users": [leaving.pk]})
    assert response.status_code == 400 and "at least one colleague" in response.content.decode()
    assert in_alpha(alpha, Handover.objects.count) == 0


# --- roles and isolation ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["sales", "call_center", "service", "finance"])
def test_merge_and_handover_need_customers_manage(page_client, alpha, role):
    a, b = make(alpha, "张伟"), make(alpha, "张伟")
    client = page_client("alpha", role)
    assert client.get(f"/customers/{a.pk}/merge/").status_code == 403
    assert client.post(f"/customers/{a.pk}/merge/", {"other": b.pk, "keep": a.pk}).status_code == 403
    assert client.get("/customers/handover/").status_code == 403
    assert client.post("/customers/handover/", {"from_user": staff(alpha, "sales").pk,
                                                "to_users": [staff(alpha, "service").pk]}).status_code == 403
    assert in_alpha(alpha, lambda: Customer.objects.filter(merged_into__isnull=False).count()) == 0


@pytest.mark.parametrize("role", ["admin", "manager", "sales", "call_center", "service", "finance"])
def test_sections_role_table(page_client, alpha, role):
    customer = make(alpha)
    client = page_client("alpha", role)
    expected_documents = 403 if role in ("call_center", "finance") else 200
    assert client.get(f"/customers/{customer.pk}/documents/").status_code == expected_documents
    assert client.get(f"/customers/{customer.pk}/profile/").status_code == 200
    assert client.get(f"/customers/{customer.pk}/company/").status_code == 200


def make_apart(agency, avoid: int, name: str, **kw):
    """A customer whose id differs from ``avoid``: each schema numbers its own rows, so ids can coincide."""
    customer = make(agency, name, **kw)
    return customer if customer.pk != avoid else make(agency, name, **kw)


def test_bravo_ids_are_404_on_alpha(page_client, alpha, bravo):
    ours = make(alpha, "阿尔法客户")
    theirs = make_apart(bravo, ours.pk, "布拉沃客户", kind="company")
    their_person = make_apart(bravo, ours.pk, "布拉沃员工")
    document = add_document(bravo, their_person)
    with tenant_context(alpha):
        assert not Customer.objects.filter(pk__in=[theirs.pk, their_person.pk]).exists()
        assert not TravelDocument.objects.filter(pk=document.pk).exists()
    connection.set_schema_to_public()
    client = page_client("alpha", "admin")
    pk = theirs.pk
    gets = [f"/customers/{pk}/documents/", f"/customers/{pk}/profile/", f"/customers/{pk}/company/",
            f"/customers/{pk}/company/people/?q=x", f"/customers/{pk}/merge/",
            f"/customers/{ours.pk}/merge/?other={pk}"]
    posts = [(f"/documents/{document.pk}/reveal/", {}),
             (f"/customers/{pk}/documents/add/", {"kind": "passport", "issuing_country": "CN", "number": "E99999999"}),
             (f"/customers/{pk}/profile/preferences/", {"seat": "aisle"}),
             (f"/customers/{pk}/profile/loyalty/", {"programme": "CA", "number": "1"}),
             (f"/customers/{pk}/profile/family-dates/", {"label": "x", "date": "2000-01-01"}),
             (f"/customers/{pk}/company/link/", {"name": "新人"}),
             (f"/customers/{pk}/merge/", {"other": ours.pk, "keep": ours.pk}),
             (f"/customers/{ours.pk}/merge/", {"other": pk, "keep": ours.pk})]
    for url in gets:
        assert client.get(url).status_code == 404, url
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url
    # A person on bravo is no choice for linking on alpha either.
    response = client.post(f"/customers/{ours.pk}/company/link/", {"person": their_person.pk})
    assert response.status_code == 400
    with tenant_context(bravo):
        assert DocumentReveal.objects.count() == 0 and Employment.objects.count() == 0
    with tenant_context(alpha):
        assert Customer.objects.count() == 1


def test_alpha_session_means_nothing_on_bravo(page_client, bravo):
    theirs = make(bravo, "布拉沃客户")
    client = page_client("alpha", "admin", on="bravo.localhost")
    for url in (f"/customers/{theirs.pk}/documents/", f"/customers/{theirs.pk}/merge/", "/customers/handover/"):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert page_client("alpha", None).get("/customers/handover/").status_code == 302
