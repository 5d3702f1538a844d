"""Lead intake in few SQL statements (issue 22): a new lead through the signed website webhook, the
public enquiry form and the call center, and a lead for a customer on file, each in at most 15
statements, writing the same rows as before (customer with its phone, e-mail, search text and change
log; opportunity in the first stage with its stage history; the enquiry on the timeline; the lead's
service-level clock and no request clock; the owner by the rules; the new owner's task).

The count is what the request runs in production: every statement, the tenant's ``SET search_path``,
the page's session and sign-in reads and the statement the commit runs (the periodic-job pull of the
lead's clock, ``tenants.jobs.due``) included. The test's own transaction turns the request's outermost
``atomic`` block into ``SAVEPOINT … RELEASE``; outside a test they are ``BEGIN … COMMIT``, which
Django captures too, so the count is the same.
"""
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import Address, ChangeLog, Contact, Customer, Email, Phone
from crm.customers.snapshot import changes
from crm.pipeline import services
from crm.pipeline.models import AssignmentRule, InboundEvent, Opportunity, StageChange, Task
from crm.tiers.models import ServiceClock

from .conftest import staff
from .test_pipeline_api import enquiry as webhook_event
from .test_pipeline_api import post, secret_of
from .test_pipeline_pages import _no_enquiry_counts  # noqa: F401  (autouse fixture: the form's rate limit)
from .test_pipeline_pages import enquiry as form_data
from .tier_factories import ladder

pytestmark = pytest.mark.django_db
LIMIT = 15
@pytest.fixture
def counted(django_capture_on_commit_callbacks):
    """``with counted() as ran:`` the statements run in the block, its on-commit work included."""

    @contextmanager
    def count():
        ran: list[str] = []
        with CaptureQueriesContext(connection) as ctx:
            with django_capture_on_commit_callbacks(execute=True):
                yield ran
        ran.extend(query["sql"].strip() for query in ctx.captured_queries)

    return count


def within_limit(ran: list[str], what: str) -> list[str]:
    assert len(ran) <= LIMIT, f"{what}: {len(ran)} statements\n" + "\n".join(s[:160] for s in ran)
    return ran


def warm_up(client, path: str = "/api/v1/webhooks/website/") -> None:
    """A request before the one counted: what the first request of a client does once (the host's agency
    into the cache, a signed-in person's device on record) is not the intake's."""
    client.get(path)


@pytest.fixture
def intake_setup(alpha):
    """Alpha with service tiers (a new customer gets Standard: 24 h for a lead, 48 h for a request) and
    one assignment rule: enquiries for Paris go to the salesperson."""
    with tenant_context(alpha):
        tiers = ladder()
        sales = staff(alpha, "sales")
        AssignmentRule.objects.create(kind=AssignmentRule.Kind.DESTINATION, destination="巴黎", user=sales, position=1)
        services.intake_settings()  # the settings row (made by the first look at the pipeline settings)
    return {"tiers": tiers, "sales": sales}


def assert_lead_rows(opportunity: Opportunity, *, source: str, channel: str, owner, tier: str, hours: int) -> None:
    """The rows a lead makes besides its customer."""
    assert opportunity.stage == services.first_stage() and opportunity.source == source
    assert opportunity.owner == owner and (opportunity.assigned_at is not None) == (owner is not None)
    assert list(StageChange.objects.filter(opportunity=opportunity).values_list("from_stage", "to_stage")) == [
        (None, opportunity.stage_id)]
    enquiry = Contact.objects.get(customer=opportunity.customer, direction="in", summary__startswith="Enquiry")
    assert enquiry.channel == channel and opportunity.title in enquiry.summary
    clock = ServiceClock.objects.get(opportunity=opportunity)
    assert (clock.kind, clock.tier_name, clock.target_hours, clock.contact_id) == ("lead", tier, hours, enquiry.pk)
    assert clock.owner_id == (owner.pk if owner else opportunity.customer.owner_id)
    assert clock.due_at - clock.started_at == timedelta(hours=hours) and clock.started_at == opportunity.created_at
    assert not ServiceClock.objects.filter(kind="request").exists()  # the enquiry is the lead, not a request


def assert_new_customer(customer: Customer, *, name: str, phones: list[str], emails: list[str]) -> None:
    assert customer.name == name
    assert list(customer.phones.values_list("number", flat=True)) == phones
    assert list(customer.emails.values_list("address", flat=True)) == emails
    logged = list(ChangeLog.objects.filter(customer=customer).order_by("pk").values_list("field", "old", "new"))
    assert logged == changes({}, crm_services._snapshot(customer))  # as read back from the rows
    written = Customer.objects.get(pk=customer.pk).search_text
    crm_services.refresh_search_text(customer)  # recomputed from the rows: the same
    assert written == customer.search_text and name.lower() in written


# --- the website webhook ------------------------------------------------------------------------------

def test_a_new_lead_through_the_webhook(alpha, api_client, intake_setup, counted):
    secret, client = secret_of(alpha), api_client("alpha")
    warm_up(client)
    with counted() as ran:
        response = post(client, webhook_event("evt_new", email="zhao.min@example.cn"), secret)
    assert response.status_code == 201, response.content
    within_limit(ran, "webhook, new customer")
    with tenant_context(alpha):
        event = InboundEvent.objects.get(event_id="evt_new")
        opportunity = Opportunity.objects.get(pk=response.json()["opportunity"])
        assert (event.customer_id, event.opportunity_id) == (opportunity.customer_id, opportunity.pk)
        assert_new_customer(opportunity.customer, name="赵敏", phones=["+8613655556666"], emails=["zhao.min@example.cn"])
        assert opportunity.customer.source == Customer.Source.WEBSITE
        assert_lead_rows(opportunity, source="website", channel="message", owner=intake_setup["sales"],
                         tier="Standard", hours=24)
    with counted() as ran:  # the sender retries: nothing written
        again = post(client, webhook_event("evt_new"), secret)
    assert again.status_code == 200 and again.json()["opportunity"] == opportunity.pk
    assert not [s for s in ran if s.upper().startswith(("INSERT", "UPDATE", "DELETE")) and "ON CONFLICT" not in s]
    with tenant_context(alpha):
        assert InboundEvent.objects.count() == 1 and Opportunity.objects.count() == 1


def test_a_lead_for_a_customer_on_file_through_the_webhook(alpha, api_client, intake_setup, counted):
    secret, client = secret_of(alpha), api_client("alpha")
    with tenant_context(alpha):
        on_file = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="赵敏", phones=["13655556666"],
                                               owner=staff(alpha, "manager"))
        customers = Customer.objects.count()
    warm_up(client)
    with counted() as ran:
        response = post(client, webhook_event("evt_known", destination="三亚"), secret)  # no rule matches
    assert response.status_code == 201, response.content
    within_limit(ran, "webhook, customer on file")
    # The opportunity's own statement checks the customer is live and links the event: no statement of their own.
    assert not [s for s in ran if s.startswith(('UPDATE "pipeline_inboundevent"', "SELECT merged_into_id"))], ran
    with tenant_context(alpha):
        opportunity = Opportunity.objects.get(pk=response.json()["opportunity"])
        assert opportunity.customer == on_file and Customer.objects.count() == customers
        assert_lead_rows(opportunity, source="website", channel="message", owner=None, tier="Standard", hours=24)


# --- the public enquiry form --------------------------------------------------------------------------

def test_a_new_lead_through_the_enquiry_form(alpha, page_client, intake_setup, counted):
    client = page_client("alpha")
    warm_up(client, "/enquiry/")  # the visitor opens the form first
    with counted() as ran:
        response = client.post("/enquiry/", form_data(email="li.na@example.cn", destination="法国 巴黎"))
    assert response.status_code == 302, response.content
    within_limit(ran, "enquiry form, new customer")
    with tenant_context(alpha):
        opportunity = Opportunity.objects.get(destination="法国 巴黎")
        assert_new_customer(opportunity.customer, name="李娜", phones=["+8613912345678"], emails=["li.na@example.cn"])
        assert_lead_rows(opportunity, source="website_form", channel="message", owner=intake_setup["sales"],
                         tier="Standard", hours=24)


# --- the call center ----------------------------------------------------------------------------------

def test_a_new_lead_from_the_call_center(alpha, page_client, intake_setup, counted):
    client = page_client("alpha", "call_center")
    warm_up(client, "/pipeline/new/")
    with counted() as ran:
        response = client.post("/pipeline/new/", {"name": "王先生", "phone": "139 1234 5678", "destination": "Bali",
                                                  "adults": 2, "children": 0, "source": "call_center", "take": "on"})
    assert response.status_code == 302
    within_limit(ran, "call center page, new customer")
    with tenant_context(alpha):
        opportunity = Opportunity.objects.get(destination="Bali")
        assert_new_customer(opportunity.customer, name="王先生", phones=["+8613912345678"], emails=[])
        assert_lead_rows(opportunity, source="call_center", channel="call", owner=staff(alpha, "call_center"),
                         tier="Standard", hours=24)


def test_a_call_center_lead_for_a_customer_on_file(alpha, page_client, intake_setup, counted):
    with tenant_context(alpha):
        wang = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="王芳", phones=["13912345678"])
    client = page_client("alpha", "call_center")
    warm_up(client, "/pipeline/new/")
    with counted() as ran:
        response = client.post("/pipeline/new/", {"customer": wang.pk, "destination": "巴黎", "adults": 1, "children": 0,
                                                  "source": "call_center"})
    assert response.status_code == 302
    within_limit(ran, "call center page, customer on file")
    with tenant_context(alpha):
        opportunity = Opportunity.objects.get(customer=wang)
        assert_lead_rows(opportunity, source="call_center", channel="call", owner=intake_setup["sales"],
                         tier="Standard", hours=24)


def test_a_lead_given_to_a_colleague_makes_their_task(alpha, intake_setup, counted):
    with tenant_context(alpha):
        manager, sales = staff(alpha, "manager"), intake_setup["sales"]
        with counted() as ran:
            opportunity = services.lead_intake(source="call_center", name="周杰", phone="13711112222",
                                               email="zhou@example.cn", destination="Tokyo", actor=manager, owner=sales)
        within_limit(ran, "lead given to a colleague")
        task = Task.objects.get(opportunity=opportunity)
        assert (task.owner, task.kind, task.created_by, task.text_kind) == (sales, Task.Kind.CALL, manager, "new_lead")
        assert_lead_rows(opportunity, source="call_center", channel="call", owner=sales, tier="Standard", hours=24)
        assert ChangeLog.objects.filter(customer=opportunity.customer, actor=manager).exists()


def test_a_new_customer_written_in_few_statements_reads_back_the_same(alpha, counted):
    """customer_create writes a new customer's contacts, search text and change log from what it was
    given; read back from the rows they are the same."""
    with tenant_context(alpha):
        with counted() as ran:
            made = crm_services.customer_create(
                actor=None, via=ChangeLog.Via.SYSTEM, name="Anna Lee", latin_surname="LEE", latin_given="ANNA",
                phones=["13800001111", "+86 138 0000 2222"], emails=["Anna@Example.com", "anna.lee@example.com"],
                addresses=[{"line": "1 Long Road", "city": "Beijing"}, {"line": ""}, {"line": "2 Short St"}],
                tags=["vip", "b"])
        # search path, duplicates, customer, addresses, then phones, e-mails and change log: nothing read back
        assert len(ran) <= 5, ran
        assert_new_customer(made, name="Anna Lee", phones=["+8613800001111", "+8613800002222"],
                            emails=["anna@example.com", "anna.lee@example.com"])
        assert list(Address.objects.filter(customer=made).values_list("line", "city")) == [
            ("1 Long Road", "Beijing"), ("2 Short St", "")]
        assert Phone.objects.filter(customer=made).count() == 2 and Email.objects.filter(customer=made).count() == 2
        with pytest.raises(crm_services.DuplicateCustomer) as found:  # found by phone first, then by e-mail
            crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="x", phones=["13800002222"],
                                         emails=["anna@example.com"])
        assert [(c.pk, why) for c, why in found.value.matches] == [(made.pk, "phone +8613800002222")]
        assert [(c.pk, why) for c, why in crm_services.find_duplicates(emails=["anna.lee@example.com"])] == [
            (made.pk, "e-mail anna.lee@example.com")]
        assert crm_services.find_duplicates(phones=[], emails=[]) == []


def test_a_new_customer_that_lost_a_race_is_undone_and_the_winner_found(alpha, monkeypatch):
    """Someone saved the same phone after find_duplicates looked: nothing of the new customer stays
    (no savepoint: it is undone), and the lead goes to the one on file."""
    with tenant_context(alpha):
        winner = crm_services.customer_create(actor=None, via=ChangeLog.Via.SYSTEM, name="先到", phones=["13600001111"])
        real, looks = crm_services.find_duplicates, []

        def blind_once(**given):  # the first look misses the winner, as if it committed just after
            looks.append(given)
            return [] if len(looks) == 1 else real(**given)

        monkeypatch.setattr(crm_services, "find_duplicates", blind_once)
        customers, logged = Customer.objects.count(), ChangeLog.objects.count()
        customer, created = services.customer_for_contact(name="后到", phone="136 0000 1111", email="late@example.cn")
        assert (customer, created) == (winner, False) and len(looks) == 2
        assert Customer.objects.count() == customers and ChangeLog.objects.count() == logged
        assert not Email.objects.filter(address="late@example.cn").exists()
        assert Phone.objects.get(number="+8613600001111").customer == winner


def test_the_pull_after_the_commit_does_not_wait_for_the_flush_and_leaves_the_setting(alpha, django_db_blocker):
    """The clock job's pull runs after the lead's commit, in autocommit: its statement commits with
    ``synchronous_commit`` off for itself alone (the lead is durable already; a lost pull waits at most
    for the job's safety net), and the connection's setting is untouched afterwards. Run on a connection
    of its own, outside the test's transaction, as a request's on-commit callback runs."""
    import threading
    from datetime import datetime, timezone as dt_timezone

    from django.db import connections

    from tenants.jobs import services as agency_jobs
    from tenants.jobs.models import AgencyJob

    job, at = "tiers.check_clocks", datetime(2020, 1, 1, tzinfo=dt_timezone.utc)  # earlier than any due time
    seen = {}

    def request():
        try:
            with CaptureQueriesContext(connection) as ran:
                agency_jobs._pull(alpha.pk, job, at, flushed=False)
            with connection.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                seen["setting"] = cursor.fetchone()[0]
                cursor.execute("SELECT due_at FROM agency_jobs_agencyjob WHERE agency_id = %s AND job = %s", [alpha.pk, job])
                seen["due_at"] = cursor.fetchone()[0]
                cursor.execute("DELETE FROM agency_jobs_agencyjob WHERE agency_id = %s AND job = %s AND due_at = %s",
                               [alpha.pk, job, at])  # leave the shared row as a fresh agency's (no row: due now)
            seen["sql"] = [q["sql"] for q in ran.captured_queries]
        finally:
            connections.close_all()

    with django_db_blocker.unblock():
        thread = threading.Thread(target=request)
        thread.start()
        thread.join(30)
    assert seen["due_at"] == at and seen["setting"] == "on"
    assert seen["sql"][-1].startswith("SET LOCAL synchronous_commit TO off; ")  # after the new connection's search path
    assert not AgencyJob.objects.unscoped().filter(agency=alpha, job=job, due_at=at).exists()
    # Inside a transaction (a caller's atomic block) the pull is an ordinary statement of that transaction.
    with CaptureQueriesContext(connection) as ran:
        agency_jobs._pull(alpha.pk, job, at, flushed=False)
    assert "synchronous_commit" not in ran.captured_queries[0]["sql"]


# --- the statements written out (crm.customers.rows, compiled once per process) ----------------------------

def test_rows_written_out_are_the_rows_the_orm_writes_and_reads(alpha):
    """A contact inserted by crm.customers.rows (as contact_add does) has the values Contact.objects.create
    writes, JSON included; read back by rows.from_row it is what a queryset gives (converters applied)."""
    from django.forms.models import model_to_dict

    from crm.customers import rows

    with tenant_context(alpha):
        customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.SYSTEM, name="行", phones=["13500001111"])
        given = dict(customer=customer, channel="message", direction="in", summary="你好", text_kind="new_lead",
                     text_params={"title": "东京", "n": [1, 2]}, next_step="call back")
        by_orm = Contact.objects.create(**given)
        written = Contact(**given)
        insert, params = rows.insert_sql(written)
        with connection.cursor() as cursor:
            cursor.execute(f"{insert} RETURNING id", params)
            rows.inserted(written, cursor.fetchone()[0])
            cursor.execute(f"SELECT {rows.columns(Contact, 'c')} FROM crm_contact c WHERE c.id = %s", [written.pk])
            read = rows.from_row(Contact, cursor.fetchone())
        unstamped = lambda contact: {k: v for k, v in model_to_dict(contact).items() if k not in ("id", "at")}  # noqa: E731
        assert unstamped(Contact.objects.get(pk=written.pk)) == unstamped(by_orm) == unstamped(read)
        assert read.text_params == {"title": "东京", "n": [1, 2]} and not read._state.adding
        assert rows.from_row(Contact, [None] * len(Contact._meta.concrete_fields)) is None  # a LEFT JOIN's missing row


def test_a_statement_compiled_once_serves_every_agency(alpha, bravo, django_capture_on_commit_callbacks):
    """The lead's clock statement is compiled once per process (crm.tiers.services._clock_start_sql) and
    names no schema: a lead in alpha takes alpha's tier, a lead in bravo bravo's, one after the other."""
    from crm.tiers import services as tiers

    with tenant_context(alpha):
        ladder()  # Standard: 24 h for a lead
        services.lead_intake(source="website", name="甲", phone="13511112222")
    with tenant_context(bravo):
        tiers.tier_save(actor=None, name="Bravo basic", color="#112233", lead_response_hours=6,
                        request_response_hours=12, complaint_response_hours=6)
        services.lead_intake(source="website", name="乙", phone="13511112222")
        clock = ServiceClock.objects.get()
        assert (clock.tier_name, clock.target_hours) == ("Bravo basic", 6)
    with tenant_context(alpha):
        clock = ServiceClock.objects.get()
        assert (clock.tier_name, clock.target_hours) == ("Standard", 24)
    assert tiers._clock_start_sql.cache_info().currsize >= 1


def test_the_webhook_reads_rules_and_duplicates_with_its_claim_and_writes_the_enquiry_with_the_opportunity(
        alpha, api_client, intake_setup, counted):
    """One message claims the event, reads the assignment rules and the customer's duplicates (by the
    phone as the website typed it); the opportunity's statement writes the enquiry: neither has a round
    trip of its own, and the rows are those of before (the enquiry on the timeline, the lead's clock on it)."""
    secret, client = secret_of(alpha), api_client("alpha")
    with tenant_context(alpha):
        on_file = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="赵敏", phones=["+86 136 5555 6666"])
    warm_up(client)
    with counted() as ran:
        response = post(client, webhook_event("evt_ahead"), secret)
    assert response.status_code == 201, response.content
    claim = [s for s in ran if 'INSERT INTO "pipeline_inboundevent"' in s]
    assert len(claim) == 1 and "pipeline_assignmentrule" in claim[0] and "crm_phone p" in claim[0], ran
    assert not [s for s in ran if "crm_phone p" in s and s is not claim[0]], ran  # no duplicates read of its own
    assert not [s for s in ran if s.startswith('INSERT INTO "crm_contact"')], ran
    with tenant_context(alpha):
        opportunity = Opportunity.objects.get(pk=response.json()["opportunity"])
        assert opportunity.customer == on_file and Customer.objects.count() == 1
        enquiry = Contact.objects.get(customer=on_file)
        assert (enquiry.channel, enquiry.direction, enquiry.staff_id) == ("message", "in", None)
        assert ServiceClock.objects.get(opportunity=opportunity).contact_id == enquiry.pk
        assert not ServiceClock.objects.filter(kind=ServiceClock.Kind.REQUEST).exists()


def test_webhook_leads_on_one_connection_alternating_agencies_find_each_agencys_own_customer(
        alpha, bravo, api_client):
    """The claim, the rules and the duplicates are prepared once per connection: alpha's and bravo's
    leads in turn on the same PostgreSQL session each find the customer on file in their own agency."""
    mine, secrets_, clients = {}, {}, {}
    for agency in (alpha, bravo):
        with tenant_context(agency):
            mine[agency.slug] = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE,
                                                             name=f"{agency.slug} 客户", phones=["13655556666"]).pk
        connection.set_schema_to_public()
        secrets_[agency.slug], clients[agency.slug] = secret_of(agency), api_client(agency.slug)
    backend = connection.connection
    for n in range(4):
        for slug in ("alpha", "bravo") if n % 2 == 0 else ("bravo", "alpha"):
            response = post(clients[slug], webhook_event(f"evt_{slug}_{n}"), secrets_[slug])
            assert response.status_code == 201, response.content
            assert response.json()["customer"] == mine[slug], (n, slug)
    assert connection.connection is backend
    for agency in (alpha, bravo):
        with tenant_context(agency):
            assert set(Opportunity.objects.values_list("customer_id", flat=True)) == {mine[agency.slug]}
            assert Contact.objects.filter(customer_id=mine[agency.slug]).count() == 4
    connection.set_schema_to_public()


def test_duplicates_read_ahead_serve_only_the_contacts_they_were_read_for(alpha):
    with tenant_context(alpha):
        on_file = crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="甲", phones=["13511112222"])
        assert crm_services.duplicates_ahead(phones=["not a phone"], emails=[""]) is None  # customer_create reports it
        assert crm_services.duplicates_ahead(phones=[" "], emails=[""]) is None
        ahead = crm_services.duplicates_ahead(phones=["135 1111 2222"], emails=[""])
        assert (ahead.phones, ahead.emails) == (["+8613511112222"], [])
        # Read for other contacts (here: nothing found): customer_create reads its own and finds the customer on file.
        other = crm_services.duplicates_ahead(phones=["13599998888"], emails=[""])
        other.matches = []
        with pytest.raises(crm_services.DuplicateCustomer) as found:
            crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="乙", phones=["13511112222"],
                                         ahead=other)
        assert found.value.matches[0][0] == on_file
        ahead.matches = []  # read for these contacts: taken as read (no read of its own), so only the phone's
        with pytest.raises(crm_services.DuplicateCustomer) as lost:  # unique index stops it, as a lost race
            crm_services.customer_create(actor=None, via=ChangeLog.Via.PAGE, name="乙", phones=["13511112222"],
                                         ahead=ahead)
        assert lost.value.matches == [] and Customer.objects.count() == 1
