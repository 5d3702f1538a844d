"""Customer 360 pages: list and bulk actions, create/edit with duplicate warnings, the card with its
timeline and history, the call-center screen pop, the top-bar search — by role and across agencies."""
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from django_tenants.utils import tenant_context

from crm.customers import services
from crm.customers.models import ChangeLog, Contact, Customer
from crm.customers.snapshot import created_values

from .conftest import staff

pytestmark = pytest.mark.django_db
API = ChangeLog.Via.API


def make(agency, name="张伟", **kw):
    kw.setdefault("phones", ["138 0013 8000"])
    with tenant_context(agency):
        return services.customer_create(actor=None, via=API, name=name, **kw)


def form_data(**overrides):
    data = {"kind": "person", "name": "王芳", "latin_surname": "WANG", "latin_given": "Fang", "gender": "F",
            "birthday": "1985-03-08", "language": "zh-hans", "source": "wechat", "owner": "", "tags": "VIP，golf, ",
            "notes": "喜欢靠窗", "industry": "", "phone_1": "139 1234 5678", "phone_2": "", "phone_3": "",
            "email_1": "Wang.Fang@Example.cn", "email_2": "", "address_line": "建国路 88 号", "address_city": "北京",
            "address_postcode": "100022", "address_country": "cn"}
    data.update(overrides)
    return data


def add_contact(agency, customer, role="sales", **kw):
    kw.setdefault("channel", "call")
    kw.setdefault("summary", "Asked about Hainan in March")
    with tenant_context(agency):
        return services.contact_add(actor=staff(agency, role), customer=customer, **kw)


# --- the list -------------------------------------------------------------------------------------

def test_list_filters_and_live_partial(page_client, alpha):
    sales = staff(alpha, "sales")
    zhang = make(alpha, "张伟", latin_surname="ZHANG", latin_given="Wei", tags=["vip"], source="wechat", owner=sales)
    acme = make(alpha, "北京星辰科技有限公司", kind="company", phones=[], source="corporate")
    li = make(alpha, "李娜", phones=["13912345678"], emails=["li.na@example.cn"])
    client = page_client("alpha", "manager")

    def names(query, **headers):
        response = client.get(f"/customers/?{query}", **headers)
        assert response.status_code == 200
        html = response.content.decode()
        return {c.name for c in (zhang, acme, li) if f'href="/customers/{c.pk}/"' in html}

    assert names("") == {"张伟", "北京星辰科技有限公司", "李娜"}
    assert names("q=张伟") == {"张伟"}
    assert names("q=zhang") == {"张伟"}
    assert names("q=139 1234 5678") == {"李娜"}
    assert names("kind=company") == {"北京星辰科技有限公司"}
    assert names(f"owner={sales.pk}") == {"张伟"}
    assert names("owner=none") == {"北京星辰科技有限公司", "李娜"}
    assert names("tag=vip") == {"张伟"}
    assert names("source=corporate") == {"北京星辰科技有限公司"}
    assert names("q=李&kind=company") == set()

    partial = client.get("/customers/?kind=company", HTTP_HX_REQUEST="true")
    assert b"<html" not in partial.content and f"/customers/{acme.pk}/".encode() in partial.content
    assert b"/customers/export/?kind=company" in partial.content  # the export link carries the filters


def test_list_sorts_and_paginates(page_client, alpha):
    with tenant_context(alpha):
        Customer.objects.bulk_create([Customer(name=f"客户{i:03d}") for i in range(55)])
    client = page_client("alpha", "sales")
    first = client.get("/customers/").content.decode()
    assert "客户000" in first and "客户049" in first and "客户050" not in first
    assert "Page 1 of 2" in first
    second = client.get("/customers/?page=2").content.decode()
    assert "客户050" in second and "客户054" in second and "客户000" not in second
    backwards = client.get("/customers/?sort=-name").content.decode()
    assert "客户054" in backwards and backwards.index("客户054") < backwards.index("客户053")
    assert "客户000" not in backwards
    assert client.get("/customers/?sort=bogus&page=99").status_code == 200


def test_list_buttons_follow_capabilities(page_client):
    manager = page_client("alpha", "manager").get("/customers/").content.decode()
    assert 'href="/customers/new/"' in manager and 'href="/customers/import/"' in manager
    assert 'action="/customers/bulk/"' in manager and "/customers/export/" in manager
    finance = page_client("alpha", "finance").get("/customers/").content.decode()
    assert 'href="/customers/new/"' not in finance and "/customers/import/" not in finance
    assert "/customers/export/" not in finance and 'name="ids"' not in finance
    assert '<a href="/customers/"' in finance  # the navigation link


# --- create and edit ------------------------------------------------------------------------------

def test_create_via_page(page_client, alpha):
    owner = staff(alpha, "sales")
    response = page_client("alpha", "call_center").post("/customers/new/", form_data(owner=owner.pk))
    assert response.status_code == 302
    with tenant_context(alpha):
        customer = Customer.objects.get(name="王芳")
        assert response["Location"] == f"/customers/{customer.pk}/"
        assert list(customer.phones.values_list("number", flat=True)) == ["+8613912345678"]
        assert list(customer.emails.values_list("address", flat=True)) == ["wang.fang@example.cn"]
        assert customer.tags == ["VIP", "golf"] and customer.owner == owner and customer.birthday == date(1985, 3, 8)
        [address] = customer.addresses.all()
        assert (address.line, address.city, address.country) == ("建国路 88 号", "北京", "CN")
        log = ChangeLog.objects.get(customer=customer)  # the creation: one entry with every value
        assert (log.field, log.via, log.actor.email) == ("created", "page", "call_center@alpha.test")
        assert created_values(log.new)["name"] == "王芳"
        assert created_values(log.new)["addresses"] == "建国路 88 号, 北京"


def test_create_form_prefills_the_phone_and_suggests_similar_names(page_client, alpha):
    client = page_client("alpha", "call_center")
    html = client.get("/customers/new/?phone=%2B8613912345678").content.decode()
    assert 'name="phone_1" value="+8613912345678"' in html
    assert 'hx-get="/customers/similar/"' in html
    zhang = make(alpha, "张伟", latin_surname="ZHANG", latin_given="Wei")
    similar = client.get("/customers/similar/?name=张伟", HTTP_HX_REQUEST="true").content.decode()
    assert f'href="/customers/{zhang.pk}/"' in similar and "ZHANG Wei" in similar
    assert client.get("/customers/similar/?name=zhang wei").content.decode().count(f"/customers/{zhang.pk}/") == 1
    assert "/customers/" not in client.get(f"/customers/similar/?name=张伟&exclude={zhang.pk}").content.decode()


def test_duplicate_phone_warns_with_a_link_and_saves_nothing(page_client, alpha):
    existing = make(alpha, "张伟", phones=["13800138000"])
    response = page_client("alpha", "sales").post("/customers/new/", form_data(name="张伟 (new)",
                                                                             phone_1="+86 138-0013-8000"))
    assert response.status_code == 409
    html = response.content.decode()
    assert 'data-test="duplicates"' in html and "Nothing was saved" in html
    assert f'href="/customers/{existing.pk}/"' in html and "+8613800138000" in html
    assert 'value="张伟 (new)"' in html  # what was typed is still there
    with tenant_context(alpha):
        assert Customer.objects.count() == 1


def test_field_errors_appear_next_to_fields(page_client, alpha):
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    response = page_client("alpha", "sales").post("/customers/new/", form_data(
        name=" ", phone_1="139 1234 5678", phone_2="12", email_1="nope", birthday=tomorrow, latin_surname="王"))
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("name", "phone_2", "email_1", "birthday", "latin_surname"):
        assert f'data-field="{field}"' in html, field
    assert 'data-field="phone_1"' not in html
    response = page_client("alpha", "sales").post("/customers/new/", form_data(kind="alien", birthday="someday"))
    assert response.status_code == 400 and b'data-field="kind"' in response.content
    assert b'data-field="birthday"' in response.content
    with tenant_context(alpha):
        assert not Customer.objects.exists()


def test_edit_is_audited_as_a_page_change(page_client, alpha):
    customer = make(alpha, "张伟", phones=["13800138000", "13800138001", "13800138002", "13800138003"],
                    addresses=[{"line": "一号", "city": "上海"}, {"line": "二号", "city": "杭州"}])
    client = page_client("alpha", "sales")
    html = client.get(f"/customers/{customer.pk}/edit/").content.decode()
    assert 'value="张伟"' in html and 'name="phone_4" value="+8613800138003"' in html
    assert "One more address is kept" in html
    data = form_data(name="张伟伟", latin_surname="ZHANG", latin_given="Wei", email_1="",
                     phone_1="+8613800138000", phone_2="13900139000", phone_3="", phone_4="+8613800138003",
                     address_line="一号", address_city="上海", address_postcode="", address_country="CN")
    response = client.post(f"/customers/{customer.pk}/edit/", data)
    assert response.status_code == 302 and response["Location"] == f"/customers/{customer.pk}/"
    with tenant_context(alpha):
        changes = {c.field: c for c in ChangeLog.objects.filter(customer=customer, via="page")}
        assert (changes["name"].old, changes["name"].new) == ("张伟", "张伟伟")
        assert changes["name"].actor.email == "sales@alpha.test"
        assert changes["phones"].new == "+8613800138000, +8613800138003, +8613900139000"
        assert "addresses" not in changes  # both addresses kept as they were
        assert customer.addresses.count() == 2


def test_edit_to_another_customers_email_is_a_409(page_client, alpha):
    make(alpha, "李娜", phones=[], emails=["li.na@example.cn"])
    customer = make(alpha, "张伟")
    response = page_client("alpha", "sales").post(f"/customers/{customer.pk}/edit/", form_data(
        name="张伟", phone_1="13800138000", email_1="LI.NA@example.cn"))
    assert response.status_code == 409 and "李娜" in response.content.decode()
    with tenant_context(alpha):
        assert not customer.emails.exists()


# --- the card, timeline and history ---------------------------------------------------------------

def test_card_shows_details_and_the_timeline(page_client, alpha):
    customer = make(alpha, "张伟", latin_surname="ZHANG", latin_given="Wei", emails=["zw@example.cn"], tags=["vip"],
                    addresses=[{"line": "建国路 1 号", "city": "北京"}], owner=staff(alpha, "sales"))
    add_contact(alpha, customer, summary="Asked about Sanya", next_step="Send offer",
                next_step_due=date.today() - timedelta(days=2))
    add_contact(alpha, customer, channel="complaint", direction="in", summary="Hotel was noisy")
    html = page_client("alpha", "sales").get(f"/customers/{customer.pk}/").content.decode()
    for text in ("ZHANG Wei", "Individual", "Sales of alpha", "vip", "+86 138 0013 8000", "zw@example.cn",
                 "建国路 1 号", "Asked about Sanya", "Send offer", "overdue", "Hotel was noisy", "Open"):
        assert text in html, text
    assert html.index("Hotel was noisy") < html.index("Asked about Sanya")  # newest first
    assert html.index('id="contact-form"') < html.index('id="timeline"')  # the quick-add is above
    assert f'hx-get="/customers/{customer.pk}/documents/"' in html and 'id="documents-section"' in html
    assert f'hx-get="/customers/{customer.pk}/profile/"' in html
    assert f'hx-get="/customers/{customer.pk}/company/"' in html
    assert f'hx-get="/customers/{customer.pk}/history/"' in html
    assert f'href="/customers/{customer.pk}/edit/"' in html
    assert f'href="/customers/{customer.pk}/merge/"' not in html  # sales may not merge
    manager = page_client("alpha", "manager").get(f"/customers/{customer.pk}/").content.decode()
    assert f'href="/customers/{customer.pk}/merge/"' in manager


def test_card_by_role_hides_documents_and_the_forms(page_client, alpha):
    customer = make(alpha)
    call_center = page_client("alpha", "call_center").get(f"/customers/{customer.pk}/").content.decode()
    assert "documents-section" not in call_center and 'id="contact-form"' in call_center
    finance = page_client("alpha", "finance").get(f"/customers/{customer.pk}/").content.decode()
    assert "documents-section" not in finance and 'id="contact-form"' not in finance
    assert f'/customers/{customer.pk}/edit/' not in finance


def test_merged_away_record_points_to_the_survivor(page_client, alpha):
    keep = make(alpha, "张伟")
    drop = make(alpha, "张 伟", phones=["13900139000"])
    with tenant_context(alpha):
        services.customer_merge(actor=staff(alpha, "manager"), keep=keep, drop=drop)
    client = page_client("alpha", "sales")
    html = client.get(f"/customers/{drop.pk}/").content.decode()
    assert 'data-test="merged"' in html and f'href="/customers/{keep.pk}/"' in html
    assert client.get(f"/customers/{drop.pk}/edit/")["Location"] == f"/customers/{keep.pk}/edit/"
    # A write to it is refused, naming the survivor (tests/test_crm_merged_away.py has every write).
    refused = client.post(f"/customers/{drop.pk}/contacts/", {"channel": "call", "direction": "in", "summary": "Called"})
    assert refused.status_code == 400 and f"(#{keep.pk})" in refused.content.decode()
    with tenant_context(alpha):
        assert not Contact.objects.filter(summary="Called").exists()


def test_quick_add_contact_with_htmx(page_client, alpha):
    customer = make(alpha)
    client = page_client("alpha", "call_center")
    response = client.post(f"/customers/{customer.pk}/contacts/", {
        "channel": "call", "direction": "in", "summary": "想订三亚的酒店", "next_step": "Call back",
        "next_step_due": (date.today() + timedelta(days=1)).isoformat()}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.startswith('<li class="contact contact-call"') and "想订三亚的酒店" in html and "Call back" in html
    assert 'id="contact-form"' in html and 'hx-swap-oob="true"' in html  # a fresh form replaces the used one
    with tenant_context(alpha):
        contact = Contact.objects.get(customer=customer)
        assert contact.staff.email == "call_center@alpha.test"
        assert (contact.direction, contact.next_step) == ("in", "Call back")
    assert "想订三亚的酒店" in client.get(f"/customers/{customer.pk}/").content.decode()


def test_quick_add_errors_come_back_as_the_form(page_client, alpha):
    customer = make(alpha)
    client = page_client("alpha", "sales")
    response = client.post(f"/customers/{customer.pk}/contacts/", {
        "channel": "call", "direction": "out", "summary": " ", "next_step": "", "next_step_due": "2030-01-01"},
        HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#contact-form" and response["HX-Reswap"] == "outerHTML"
    assert b'data-field="summary"' in response.content and b'data-field="next_step"' in response.content
    url = f"/customers/{customer.pk}/contacts/"
    response = client.post(url, {"channel": "fax", "direction": "out", "summary": "x"})
    assert response.status_code == 400 and b'data-field="channel"' in response.content
    response = client.post(url, {"channel": "visit", "direction": "out", "summary": "Met"})
    assert response.status_code == 302
    with tenant_context(alpha):
        assert list(Contact.objects.values_list("summary", flat=True)) == ["Met"]


def test_history_lists_changes_newest_first(page_client, alpha):
    customer = make(alpha, "张伟")
    client = page_client("alpha", "sales")
    client.post(f"/customers/{customer.pk}/edit/", form_data(name="张伟伟", phone_1="13800138000", email_1=""))
    html = client.get(f"/customers/{customer.pk}/history/", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in html and 'data-test="history"' in html
    assert "Sales of alpha" in html and "Web page" in html and "API" in html
    assert "张伟</span> → <span class=\"new\">张伟伟" in html
    assert '<td class="card-title">Name</td>' in html and ">name</td>" not in html  # by its name in the reader's language
    assert html.index("张伟伟") < html.index(">API</td>")
    # The creation (through the API, by make): one entry with every value under its name, kind by its label.
    assert html.count('data-test="created-values"') == 1 and "Record created" in html
    assert "<dt>Kind</dt><dd>Individual</dd>" in html and "<dt>Name</dt><dd>张伟</dd>" in html
    full = client.get(f"/customers/{customer.pk}/history/").content.decode()
    assert "<html" in full and "张伟伟" in full


# --- the screen pop ---------------------------------------------------------------------------------

@pytest.mark.parametrize("number", ["13800138000", "+86 138 0013 8000", "0086-138-0013-8000", "+8613800138000"])
def test_screen_pop_known_number(page_client, alpha, number):
    company = make(alpha, "星辰科技", kind="company", phones=[])
    customer = make(alpha, "张伟", owner=staff(alpha, "sales"))
    with tenant_context(alpha):
        services.employment_set(actor=None, company=company, person=customer)
    for i in range(6):
        add_contact(alpha, customer, summary=f"Contact number {i}")
    add_contact(alpha, customer, channel="complaint", direction="in", summary="Lost luggage")
    response = page_client("alpha", "call_center").get(f"/screen-pop/{quote(number)}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-test="known"' in html
    for text in ("张伟", "星辰科技", "Sales of alpha", "Lost luggage", "Contact number 5", "Contact number 2",
                 f'href="/customers/{customer.pk}/"', 'id="contact-form"', "+86 138 0013 8000"):
        assert text in html, text
    assert "Contact number 1" not in html  # the last five only (the complaint is one of them)
    assert '<dt>Service tier</dt><dd data-test="tier">—</dd>' in html


@pytest.mark.parametrize("number", ["13912345678", "+86 139 1234 5678", "0086 139-1234-5678"])
def test_screen_pop_unknown_number_offers_to_create(page_client, alpha, number):
    client = page_client("alpha", "call_center")
    html = client.get(f"/screen-pop/{quote(number)}/").content.decode()
    assert 'data-test="unknown"' in html and "Unknown number +86 139 1234 5678" in html
    assert 'href="/customers/new/?phone=%2B8613912345678"' in html
    assert 'value="+8613912345678"' in client.get("/customers/new/?phone=%2B8613912345678").content.decode()


@pytest.mark.parametrize("number", ["12", "abc", "%2B%2B%2B"])
def test_screen_pop_bad_number_is_a_friendly_error(page_client, number):
    response = page_client("alpha", "call_center").get(f"/screen-pop/{number}/")
    assert response.status_code == 200 and b'data-test="bad-number"' in response.content
    assert b"does not look like a phone number" in response.content


# --- bulk actions --------------------------------------------------------------------------------

def test_bulk_assign_and_tag_are_audited(page_client, alpha):
    a, b = make(alpha, "张伟"), make(alpha, "李娜", phones=["13912345678"])
    c = make(alpha, "王芳", phones=[])
    sales = staff(alpha, "sales")
    response = page_client("alpha", "manager").post("/customers/bulk/", {
        "ids": [a.pk, b.pk], "owner": sales.pk, "tag": "春节", "next": "/customers/?tag=%E6%98%A5%E8%8A%82"})
    assert response.status_code == 302 and response["Location"] == "/customers/?tag=%E6%98%A5%E8%8A%82"
    with tenant_context(alpha):
        for customer in (a, b):
            customer.refresh_from_db()
            assert customer.owner == sales and customer.tags == ["春节"]
            log = ChangeLog.objects.get(customer=customer, field="owner")
            assert (log.via, log.actor.email, log.new) == ("bulk", "manager@alpha.test", "sales@alpha.test")
        c.refresh_from_db()
        assert c.owner is None and c.tags == []


def test_bulk_needs_a_selection_and_an_action(page_client, alpha):
    customer = make(alpha)
    client = page_client("alpha", "manager")
    response = client.post("/customers/bulk/", {"owner": "", "tag": "", "next": "https://evil.example/"}, follow=True)
    assert response.redirect_chain[0][0] == "/customers/" and b"Select at least one customer." in response.content
    response = client.post("/customers/bulk/", {"ids": [customer.pk], "owner": "", "tag": ""}, follow=True)
    assert b"Choose an owner to assign or a tag to add." in response.content
    assert page_client("alpha", "sales").post("/customers/bulk/", {"ids": [customer.pk], "tag": "x"}).status_code == 403


# --- roles and agencies ---------------------------------------------------------------------------

def test_roles(page_client, alpha):
    customer = make(alpha)
    finance = page_client("alpha", "finance")
    assert finance.get("/customers/").status_code == 200
    assert finance.get(f"/customers/{customer.pk}/").status_code == 200
    assert finance.get("/screen-pop/13800138000/").status_code == 200
    assert finance.get("/customers/new/").status_code == 403
    assert finance.post("/customers/new/", form_data()).status_code == 403
    assert finance.get(f"/customers/{customer.pk}/edit/").status_code == 403
    assert finance.post(f"/customers/{customer.pk}/contacts/", {"channel": "call", "summary": "x"}).status_code == 403
    assert page_client("alpha", "call_center").post("/customers/new/", form_data()).status_code == 302
    anonymous = page_client(None, on="alpha.localhost").get("/customers/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_other_agencys_customers_are_out_of_reach(page_client, alpha, bravo):
    theirs = make(bravo, "布拉沃的客户", phones=["13700137000"])
    make(alpha, "阿尔法的客户", phones=["13600136000"])
    with tenant_context(alpha):
        assert not Customer.objects.filter(pk=theirs.pk).exists()
    client = page_client("alpha", "admin")
    for url in (f"/customers/{theirs.pk}/", f"/customers/{theirs.pk}/edit/", f"/customers/{theirs.pk}/history/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/customers/{theirs.pk}/contacts/", {"channel": "call", "direction": "out",
                                                             "summary": "x"}).status_code == 404
    assert client.post(f"/customers/{theirs.pk}/edit/", form_data()).status_code == 404
    response = client.post("/customers/bulk/", {"ids": [theirs.pk], "tag": "stolen"}, follow=True)
    assert b"0 customers updated." in response.content
    with tenant_context(bravo):
        assert Customer.objects.get(pk=theirs.pk).tags == []
    assert b"Unknown number" in client.get("/screen-pop/13700137000/").content
    assert "布拉沃的客户" not in client.get("/customers/").content.decode()
    bravo_list = page_client("bravo", "admin").get("/customers/").content.decode()
    assert "布拉沃的客户" in bravo_list and "阿尔法的客户" not in bravo_list
    assert "阿尔法的客户" not in page_client("bravo", "admin").get("/search/?q=阿尔法", HTTP_HX_REQUEST="true").content.decode()
    client.defaults["HTTP_HOST"] = "bravo.localhost"  # alpha's session on bravo's host is nobody
    response = client.get(f"/customers/{theirs.pk}/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


# --- top-bar search ---------------------------------------------------------------------------------

def test_top_bar_search_shows_customers_first(page_client, alpha):
    company = make(alpha, "星辰科技", kind="company", phones=[])
    customer = make(alpha, "张伟", latin_surname="ZHANG", latin_given="Wei")
    with tenant_context(alpha):
        services.employment_set(actor=None, company=company, person=customer)
    client = page_client("alpha", "admin")
    for query in ("张伟", "zhang", "138 0013 8000"):
        html = client.get(f"/search/?q={quote(query)}", HTTP_HX_REQUEST="true").content.decode()
        assert f'href="/customers/{customer.pk}/"' in html, query
    html = client.get("/search/?q=星辰", HTTP_HX_REQUEST="true").content.decode()
    assert "ZHANG Wei · 星辰科技" in html and f'href="/customers/{company.pk}/"' in html
    make(alpha, "Admiral Tours", kind="company", phones=[])
    html = client.get("/search/?q=admi", HTTP_HX_REQUEST="true").content.decode()
    assert html.index("<h3>Customers</h3>") < html.index("<h3>Staff</h3>")
    assert "Admiral Tours" in html and "Admin of alpha" in html
