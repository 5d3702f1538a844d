"""Customer services: the rules every path (page, API, import) goes through."""
from datetime import date, timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import tenant_context

from crm.customers import crypto, selectors, services
from crm.care import services as care
from crm.pipeline.services import webhook_secret
from crm.customers.models import ChangeLog, Contact, Customer, DocumentReveal, Employment, TravelDocument

from .conftest import staff

pytestmark = pytest.mark.django_db
API = ChangeLog.Via.API


def make(agency, name="张伟", **kw):
    kw.setdefault("phones", ["138 0013 8000"])
    with tenant_context(agency):
        return services.customer_create(actor=None, via=API, name=name, **kw)


def test_phones_and_emails_are_normalised(alpha):
    customer = make(alpha, phones=["+86 139-1234-5678", "(010) 6552 9988"], emails=[" Zhang.Wei@Example.COM "])
    with tenant_context(alpha):
        assert list(customer.phones.values_list("number", flat=True)) == ["+8613912345678", "+861065529988"]
        assert list(customer.emails.values_list("address", flat=True)) == ["zhang.wei@example.com"]


@pytest.mark.parametrize("other", ["13800138000", "+86 138-0013-8000", "0086 138 0013 8000"])
def test_duplicate_phone_in_any_format_is_caught(alpha, other):
    first = make(alpha)
    with tenant_context(alpha), pytest.raises(services.DuplicateCustomer) as exc:
        services.customer_create(actor=None, via=API, name="张伟 again", phones=[other])
    assert exc.value.matches[0][0] == first


def test_duplicate_email_and_document_are_caught(alpha):
    first = make(alpha, emails=["a@b.cn"])
    with tenant_context(alpha):
        with pytest.raises(services.DuplicateCustomer):
            services.customer_create(actor=None, via=API, name="X", phones=[], emails=["A@B.CN"])
        services.document_add(actor=None, customer=first, kind="passport", issuing_country="CN", number="E1234 5678", via=API)
        other = services.customer_create(actor=None, via=API, name="Y", phones=["13900000001"])
        with pytest.raises(services.DuplicateCustomer):
            services.document_add(actor=None, customer=other, kind="passport", issuing_country="cn", number="e12345678", via=API)


def test_same_phone_at_another_agency_is_not_a_duplicate(alpha, bravo):
    make(alpha)
    make(bravo)  # agencies never see each other's customers


def test_bad_input_is_reported_per_field(alpha):
    with tenant_context(alpha), pytest.raises(ValidationError) as exc:
        services.customer_create(actor=None, via=API, name=" ", phones=["12"], emails=["nope"],
                                 birthday=date.today() + timedelta(days=1), latin_surname="张")
    assert set(exc.value.message_dict) == {"name", "phones", "emails", "birthday", "latin_surname"}


def test_every_identity_change_is_audited_with_who_and_via(alpha):
    customer = make(alpha)
    sales = staff(alpha, "sales")
    with tenant_context(alpha):
        services.customer_update(actor=sales, via=ChangeLog.Via.PAGE, customer=customer, name="张伟伟",
                                 phones=["13800138000", "13900139000"], latin_surname="ZHANG")
        changes = {c.field: (c.old, c.new, c.actor_id, c.via) for c in ChangeLog.objects.filter(customer=customer, actor=sales)}
    assert changes["name"] == ("张伟", "张伟伟", sales.pk, "page")
    assert changes["phones"] == ("+8613800138000", "+8613800138000, +8613900139000", sales.pk, "page")
    assert changes["latin_surname"][:2] == ("", "ZHANG")


def test_documents_are_encrypted_masked_and_reveals_recorded(alpha):
    customer = make(alpha)
    sales, call_center = staff(alpha, "sales"), staff(alpha, "call_center")
    with tenant_context(alpha):
        doc = services.document_add(actor=sales, customer=customer, kind="passport", issuing_country="CN",
                                    number="E12345678", via=API, expires_on=date.today() + timedelta(days=90))
        assert doc.masked == "E1234****"
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM crm_traveldocument WHERE id = %s", [doc.pk])
            assert "E12345678" not in repr(cursor.fetchone())
        assert services.document_reveal(actor=sales, document=doc, via="api") == "E12345678"
        assert DocumentReveal.objects.filter(document=doc, user=sales).count() == 1
        with pytest.raises(PermissionDenied):
            services.document_reveal(actor=call_center, document=doc, via="api")
        assert services.document_expiry(doc) == "expiring"
        assert services.document_expiry(doc, on=doc.expires_on + timedelta(days=1)) == "expired"


def test_key_rotation_keeps_numbers_readable(alpha, settings):
    customer = make(alpha)
    with tenant_context(alpha):
        doc = services.document_add(actor=None, customer=customer, kind="national_id", issuing_country="CN",
                                    number="11010519491231002X", via=API)
        secret = webhook_secret(create=True)  # the website webhook's secret is kept with the same keys
    old_token = doc.number_encrypted
    settings.DOCUMENT_KEYS = f"{Fernet.generate_key().decode()},{settings.DOCUMENT_KEYS}"
    call_command("rotate_document_keys", verbosity=0)
    with tenant_context(alpha):
        doc.refresh_from_db()
        assert doc.number_encrypted != old_token
        assert crypto.decrypt(doc.number_encrypted) == "11010519491231002X"
    settings.DOCUMENT_KEYS = settings.DOCUMENT_KEYS.split(",")[0]  # the old key is no longer needed
    with tenant_context(alpha):
        assert crypto.decrypt(doc.number_encrypted) == "11010519491231002X"
        assert webhook_secret() == secret


def test_merge_keeps_everything_and_is_recorded(alpha):
    manager = staff(alpha, "manager")
    keep = make(alpha, name="李娜", emails=["lina@example.cn"])
    drop = make(alpha, name="李娜 (dup)", phones=["13700137000"], latin_surname="LI", latin_given="Na", tags=["VIP"])
    with tenant_context(alpha):
        services.contact_add(actor=manager, customer=drop, channel="call", summary="Asked about Japan in spring")
        services.document_add(actor=None, customer=drop, kind="passport", issuing_country="CN", number="EA7654321", via=API)
        services.customer_preferences_set(actor=None, customer=drop, airlines=["ca", "MU"], seat="aisle")
        merged = services.customer_merge(actor=manager, keep=keep, drop=drop)
        drop.refresh_from_db()
        assert drop.merged_into_id == keep.pk
        assert set(merged.phones.values_list("number", flat=True)) == {"+8613800138000", "+8613700137000"}
        assert merged.contacts.count() == 1 and merged.documents.count() == 1
        assert merged.latin_surname == "LI" and merged.tags == ["VIP"]
        assert merged.preferences.airlines == ["CA", "MU"]
        assert ChangeLog.objects.filter(customer=keep, field="merged").exists()
        assert drop not in selectors.customer_list()
        with pytest.raises(ValidationError):
            services.customer_merge(actor=manager, keep=keep, drop=drop)


def test_handover_moves_every_customer_in_one_step(alpha):
    sales, service, manager = staff(alpha, "sales"), staff(alpha, "service"), staff(alpha, "manager")
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        for i in range(5):
            services.customer_create(actor=None, via=API, name=f"客户{i}", phones=[f"1380000000{i}"], owner=sales)
        handover = services.customers_handover(actor=admin, from_user=sales, to_users=[service, manager])
        assert handover.summary == {str(service.pk): 3, str(manager.pk): 2}
        assert not Customer.objects.filter(owner=sales).exists()
        assert ChangeLog.objects.filter(via="handover", field="owner", old=sales.email).count() == 5
        with pytest.raises(ValidationError):
            services.customers_handover(actor=admin, from_user=sales, to_users=[sales])


def test_a_person_is_both_private_customer_and_corporate_traveler(alpha):
    person = make(alpha, name="陈静")
    with tenant_context(alpha):
        company = services.customer_create(actor=None, via=API, kind="company", name="华信科技有限公司", phones=[])
        services.employment_set(actor=None, company=company, person=person, job_grade="M3", department="研发部",
                                is_booker=True)
        assert Customer.objects.filter(name="陈静").count() == 1
        assert Employment.objects.get(person=person).job_grade == "M3"
        assert selectors.customer_search(query="华信")[0] == person or person in selectors.customer_search(query="华信")


@pytest.mark.parametrize("query", ["王小", "小明", "wang", "XIAOMING", "xiaomin", "13912", "+86 139 1234", "wxm@", "5678"])
def test_search_by_name_phone_email_and_document_tail(alpha, query):
    with tenant_context(alpha):
        target = services.customer_create(actor=None, via=API, name="王小明", latin_surname="WANG", latin_given="Xiaoming",
                                          phones=["139 1234 0000"], emails=["wxm@example.cn"])
        services.document_add(actor=None, customer=target, kind="passport", issuing_country="CN", number="EB9995678", via=API)
        services.customer_create(actor=None, via=API, name="赵敏", phones=["13600000000"])
        assert target in selectors.customer_search(query=query), query


def test_similar_names_are_suggested(alpha):
    with tenant_context(alpha):
        services.customer_create(actor=None, via=API, name="Zhang Wei", phones=[])
        assert [c.name for c in selectors.similar_customers(name="Zhang Wie")] == ["Zhang Wei"]
        services.customer_create(actor=None, via=API, name="王晓明", phones=[])
        assert "王晓明" in [c.name for c in selectors.similar_customers(name="王晓")]


def test_screen_pop_finds_the_caller_in_any_format(alpha):
    customer = make(alpha)
    with tenant_context(alpha):
        care.complaint_log(actor=None, customer=customer, category="flight", severity="medium", description="Lost luggage")
        for number in ("13800138000", "+86 138 0013 8000", "0086-138-0013-8000"):
            pop = selectors.screen_pop(number=number)
            assert pop["customer"] == customer and len(pop["open_complaints"]) == 1
        assert selectors.screen_pop(number="13900000009")["customer"] is None
        with pytest.raises(ValidationError):
            selectors.screen_pop(number="12")


def test_contacts_need_a_summary_and_complaints_resolve(alpha):
    customer = make(alpha)
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as exc:
            services.contact_add(actor=None, customer=customer, channel="fax", summary="")
        assert set(exc.value.message_dict) == {"channel", "summary"}
        complaint = services.contact_add(actor=None, customer=customer, channel="complaint", summary="Late pickup")
        services.complaint_resolve(actor=None, contact=complaint)
        assert Contact.objects.get(pk=complaint.pk).resolved


@pytest.mark.parametrize("query", ["李 娜", "李娜", " 李　娜 ", "Li Na", "li na", "wang fang", "王 芳"])
def test_search_ignores_spaces_between_chinese_characters(alpha, query):
    """'李 娜' finds 李娜 as '李娜' does; Latin words keep their space ('Li Na', 'wang fang')."""
    with tenant_context(alpha):
        li = services.customer_create(actor=None, via=API, name="李娜", latin_surname="LI", latin_given="Na", phones=[])
        wang = services.customer_create(actor=None, via=API, name="王 芳", latin_surname="WANG", latin_given="Fang",
                                        phones=[])
        assert Customer.objects.get(pk=wang.pk).search_text.startswith("王芳 ")
        found = selectors.customer_search(query=query)
        assert (li if "李" in query or "li" in query.lower() else wang) in found, query
        assert "wangfang" not in Customer.objects.get(pk=wang.pk).search_text


def test_rows_saved_before_the_rule_get_their_spaces_collapsed_by_the_migration(alpha):
    """crm 0006: a customer saved as '王 芳' before the rule (search text '王 芳 …') is found by '王芳' after it."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("crm.customers.migrations.0006_search_text_cjk_spaces")
    with tenant_context(alpha):
        wang = services.customer_create(actor=None, via=API, name="王 芳", latin_surname="WANG", latin_given="Fang",
                                        phones=[])
        untouched = services.customer_create(actor=None, via=API, name="Li Na", phones=[])
        Customer.objects.filter(pk=wang.pk).update(search_text="王 芳 wang fang fang wang")
        assert wang not in selectors.customer_search(query="王芳")
        migration.collapse(apps, None)
        assert Customer.objects.get(pk=wang.pk).search_text.startswith("王芳 ")
        assert wang in selectors.customer_search(query="王 芳")
        assert Customer.objects.get(pk=untouched.pk).search_text.startswith("li na")
