"""crm/customers/demo.py: the demo customers are realistic, unique where the database says so, and searchable."""
from collections import Counter

from django_tenants.utils import tenant_context

from crm.customers import crypto
from crm.customers.demo import seed_customers
from crm.customers.models import ChangeLog, Contact, Customer, Email, Employment, Phone, Preferences, TravelDocument
from crm.customers.selectors import customer_search, screen_pop


def test_seed_customers(alpha):
    counts = seed_customers(alpha, people=200, companies=5, rng_seed=7)
    with tenant_context(alpha):
        assert Customer.objects.filter(kind=Customer.Kind.PERSON).count() == 200
        assert Customer.objects.filter(kind=Customer.Kind.COMPANY).count() == 5
        assert counts["Customer"] == 205
        numbers = list(Phone.objects.values_list("number", flat=True))
        assert len(numbers) == len(set(numbers)) >= 200
        assert all(n.startswith("+") for n in numbers)
        addresses = list(Email.objects.values_list("address", flat=True))
        assert len(addresses) == len(set(addresses)) > 50
        assert all(a == a.lower() for a in addresses)
        employments = Employment.objects.all()
        assert employments.count() >= 25
        assert employments.filter(is_booker=True).exists()
        assert {e.job_grade[0] for e in employments} <= {"P", "M"}
        assert 40 <= Preferences.objects.count() <= 160
        # Every person has 1–6 contacts; some complaints are still open.
        per_customer = Counter(Contact.objects.values_list("customer_id", flat=True))
        assert len(per_customer) == 200 and set(per_customer.values()) <= set(range(1, 7))
        assert ChangeLog.objects.filter(field="created").count() == 205

        documents = list(TravelDocument.objects.all())
        assert len(documents) > 50
        for document in documents[:20]:
            number = crypto.decrypt(document.number_encrypted)
            assert number not in document.number_encrypted
            assert document.masked == crypto.mask(number)
            assert document.number_hash == crypto.lookup_hash(f"{document.kind}:{document.issuing_country}:{number}")

        # Chinese names, passport spellings, companies and phones are found as typed.
        person = Customer.objects.filter(kind=Customer.Kind.PERSON, latin_given__gt="").exclude(name__contains=" ").first()
        assert person in customer_search(query=person.name, limit=50)
        assert person in customer_search(query=f"{person.latin_given} {person.latin_surname}", limit=50)
        worker = Employment.objects.select_related("company", "person").first()
        assert worker.person in customer_search(query=worker.company.name, limit=100)
        phone = Phone.objects.filter(customer=person).first()
        national = phone.number.removeprefix("+86")
        assert customer_search(query=f"{national[:3]} {national[3:7]} {national[7:]}", limit=5)[0] == person
        assert screen_pop(number=national)["customer"] == person


def test_seed_is_deterministic_and_adds_to_existing(alpha):
    seed_customers(alpha, people=30, companies=1, rng_seed=11)
    with tenant_context(alpha):
        first = sorted(Customer.objects.values_list("name", flat=True))
        Customer.objects.all().delete()
    seed_customers(alpha, people=30, companies=1, rng_seed=11)
    with tenant_context(alpha):
        assert sorted(Customer.objects.values_list("name", flat=True)) == first
    seed_customers(alpha, people=30, companies=1, rng_seed=11)  # same seed again: numbers already used are skipped
    with tenant_context(alpha):
        assert Customer.objects.count() == 62
        numbers = list(Phone.objects.values_list("number", flat=True))
        assert len(numbers) == len(set(numbers))


def test_seed_journeys_gives_an_open_pipeline_trips_in_every_state_surveys_and_complaints(alpha, mailbox):
    from django.db.models import Count

    from crm.care.models import Complaint, Survey
    from crm.care.demo_journeys import seed_journeys
    from crm.pipeline.models import Opportunity, Task
    from crm.trips.models import ChecklistItem, Payment, Trip

    seed_customers(alpha, people=260, companies=3, rng_seed=5)
    counts = seed_journeys(alpha, opportunities=130, rng_seed=5)
    with tenant_context(alpha):
        assert counts["opportunities"] == 130 == Opportunity.objects.count()
        stages = dict(Opportunity.objects.values_list("stage__code").annotate(n=Count("pk")))
        assert {"new", "qualified", "quoted", "deposit", "won", "lost"} <= set(stages)
        assert Opportunity.objects.filter(owner__isnull=True).exists()  # leads waiting to be taken
        assert set(Trip.objects.values_list("status", flat=True)) == set(Trip.Status.values)
        assert Payment.objects.filter(kind="refund").exists() and Payment.objects.filter(kind="balance").exists()
        assert ChecklistItem.objects.filter(status="received").exists()
        assert Survey.objects.filter(answered_at__isnull=False).exists()
        assert Survey.objects.filter(answered_at__isnull=True).exists()
        assert Complaint.objects.filter(escalated_at__isnull=False).exists()
        assert len(set(Complaint.objects.values_list("status", flat=True))) >= 3
        assert Task.objects.filter(done_at__isnull=True, kind="call").exists()
