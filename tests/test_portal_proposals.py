"""Proposals (issue 21): staff send a quote as a proposal, the customer reads and accepts it in the portal,
the opportunity is won and the trip confirmed, the owner gets a task, the customer a confirmation with the
PDF. A changed quote, a superseded version, a missing tick or name, a second acceptance are refused; a
quote nobody sent is invisible; every route is fenced (another customer, another agency, no session,
staff roles)."""
import io
import uuid
from decimal import Decimal

import pytest
from django.utils import translation
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from crm.customers.models import Contact
from crm.pipeline.models import Stage, Task
from crm.proposals import pdf, services
from crm.proposals.models import Acceptance, Proposal
from crm.proposals.tasks import send_confirmation
from crm.trips import services as trips
from crm.trips.models import Trip

from .conftest import host, staff
from .portal_helpers import confirmed_trip, person, portal_client, subject_of, text_of
from .test_trips_services import opportunity

pytestmark = pytest.mark.django_db(transaction=False)

TERMS = "取消条款：出发前 30 天以上取消，全额退还定金。"


def _address() -> str:
    return f"wang.{uuid.uuid4().hex[:8]}@example.cn"


class Quote:
    """A quote of alpha made from an opportunity, with two items, for 王芳 (a person with an e-mail)."""

    def __init__(self, agency, *, name="王芳", title="京都红叶 7 天"):
        self.agency = agency
        with tenant_context(agency):
            self.sales = staff(agency, "sales")
            self.customer = person(name, _address(), language="zh-hans")
            opp = opportunity(self.customer, owner=self.sales, title=title, destination="京都")
            self.trip = trips.quote_from_opportunity(actor=self.sales, opportunity=opp)
            self.items = [trips.item_add(actor=None, trip=self.trip, kind="hotel", description=f"京都酒店 {n}",
                                         supplier="Secret Supplier", cost="1000.00", sell="1500.00")
                          for n in (1, 2)]
        connection.set_schema_to_public()

    def send(self, **kw) -> Proposal:
        with tenant_context(self.agency):
            kw.setdefault("included", "早餐\n接送机")
            kw.setdefault("excluded", "签证费")
            kw.setdefault("terms", TERMS)
            proposal = services.proposal_send(actor=self.sales, trip=self.trip, message="请查收", **kw)
        connection.set_schema_to_public()
        return proposal

    def client(self):
        return portal_client(self.agency, self.customer)


@pytest.fixture
def quote(alpha):
    return Quote(alpha)


def _accept(client, trip, proposal, **data):
    body = {"typed_name": "王芳", "agreed": "on", "shown_hash": proposal.content_hash, **data}
    return client.post(f"/portal/trips/{trip.pk}/proposal/", body, HTTP_USER_AGENT="Mozilla/5.0 test")


def test_send_then_the_customer_reads_and_accepts_and_the_opportunity_is_won(
        alpha, quote, mailbox, django_capture_on_commit_callbacks):
    proposal = quote.send()
    assert proposal.version == 1 and len(proposal.content_hash) == 64
    assert "cost" not in str(proposal.snapshot) and "Secret Supplier" not in str(proposal.snapshot)
    assert proposal.snapshot["total"] == "3000.00" and proposal.snapshot["deposit"] == "900.00"  # 30 %
    # The invitation went out, and its link opens the proposal.
    assert len(mailbox) == 1 and mailbox[0]["To"] == proposal.recipient_email
    with tenant_context(alpha):
        link = quote.customer.portal_links.order_by("-created_at").first()
        assert link.next_path == f"/portal/trips/{quote.trip.pk}/proposal/"
    connection.set_schema_to_public()

    client = quote.client()
    home = client.get("/portal/").content.decode()
    assert "京都红叶 7 天" in home and f"/portal/trips/{quote.trip.pk}/proposal/" in home
    trip_page = client.get(f"/portal/trips/{quote.trip.pk}/").content.decode()
    assert 'data-test="proposal-panel"' in trip_page
    page = client.get(f"/portal/trips/{quote.trip.pk}/proposal/")
    html = page.content.decode()
    assert page.status_code == 200 and "京都酒店 1" in html and "签证费" in html and "取消条款" in html
    assert proposal.content_hash in html and "Secret Supplier" not in html

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = _accept(client, quote.trip, proposal)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert queued  # the confirmation e-mail's task, sent on commit
    with tenant_context(alpha):
        trip = Trip.objects.select_related("opportunity__stage").get(pk=quote.trip.pk)
        assert trip.status == Trip.Status.CONFIRMED and trip.opportunity.stage.kind == Stage.Kind.WON
        acceptance = Acceptance.objects.get(proposal=proposal)
        assert acceptance.customer_id == quote.customer.pk and acceptance.typed_name == "王芳"
        assert acceptance.content_hash == proposal.content_hash and acceptance.user_agent == "Mozilla/5.0 test"
        assert acceptance.address == "127.0.0.1"
        task = Task.objects.get(key=f"proposal-accepted:{acceptance.pk}")
        assert task.owner == quote.sales and task.trip_id == trip.pk
        kinds = set(Contact.objects.filter(customer=quote.customer, channel=Contact.Channel.PORTAL)
                    .values_list("text_kind", flat=True))
        assert {"portal_invited_trip", "proposal_sent", "proposal_accepted"} <= kinds
        # The confirmation: once, with the accepted proposal's PDF.
        mailbox.clear()
        assert send_confirmation.run(acceptance.pk) is True
        assert send_confirmation.run(acceptance.pk) is False
    connection.set_schema_to_public()
    assert len(mailbox) == 1
    message = mailbox[0]
    assert "京都红叶" in subject_of(message) and "王芳" in text_of(message)
    attachments = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
    assert len(attachments) == 1 and attachments[0].get_payload(decode=True).startswith(b"%PDF")

    page = client.get(f"/portal/trips/{quote.trip.pk}/proposal/").content.decode()
    assert 'data-test="proposal-accepted"' in page and 'data-test="proposal-accept"' not in page
    assert client.get(f"/portal/trips/{quote.trip.pk}/itinerary.pdf").content.startswith(b"%PDF")


def test_a_changed_quote_refuses_the_old_acceptance_until_a_new_version_is_sent(alpha, quote, mailbox, page_client):
    first = quote.send()
    with tenant_context(alpha):
        trips.item_update(actor=None, item=quote.items[0], sell="1800.00")
        assert services.quote_changed(Proposal.objects.get(pk=first.pk))
    connection.set_schema_to_public()
    staff_box = page_client("alpha", "sales").get(f"/trips/{quote.trip.pk}/proposals/").content.decode()
    assert 'data-test="proposal-changed"' in staff_box

    client = quote.client()
    response = _accept(client, quote.trip, first)
    assert response.status_code == 400 and "调整了报价" in response.content.decode()  # the customer reads Chinese
    second = quote.send()
    with tenant_context(alpha):
        assert Proposal.objects.get(pk=first.pk).superseded_at is not None
        assert second.version == 2 and second.snapshot["total"] == "3300.00"
    connection.set_schema_to_public()
    # The page showed version 1 (its hash): refused; the page now shows version 2.
    response = _accept(client, quote.trip, first)
    assert response.status_code == 400
    assert second.content_hash in response.content.decode()
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as refused, translation.override("en"):
            services.proposal_accept(customer=quote.customer, proposal=first, typed_name="王芳", agreed=True,
                                     shown_hash=first.content_hash)
        assert "newer version" in str(refused.value)
    connection.set_schema_to_public()
    assert _accept(client, quote.trip, second).status_code == 302


def test_not_ticked_no_name_and_a_second_acceptance_are_refused(alpha, quote, mailbox):
    proposal = quote.send()
    client = quote.client()
    response = _accept(client, quote.trip, proposal, agreed="", typed_name="  ")
    html = response.content.decode()
    assert response.status_code == 400 and 'data-field="agreed"' in html and 'data-field="typed_name"' in html
    with tenant_context(alpha):
        assert not Acceptance.objects.exists()
    connection.set_schema_to_public()
    assert _accept(client, quote.trip, proposal).status_code == 302
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as refused, translation.override("en"):
            services.proposal_accept(customer=quote.customer, proposal=proposal, typed_name="王芳", agreed=True,
                                     shown_hash=proposal.content_hash)
        assert "already accepted" in str(refused.value)
        assert Acceptance.objects.count() == 1
    connection.set_schema_to_public()
    # The page has no form any more; a stray POST changes nothing.
    assert _accept(client, quote.trip, proposal).status_code == 400


def test_a_quote_without_a_proposal_is_invisible_in_the_portal(alpha, quote):
    client = quote.client()
    assert "京都红叶" not in client.get("/portal/").content.decode()
    assert client.get(f"/portal/trips/{quote.trip.pk}/").status_code == 404
    assert client.get(f"/portal/trips/{quote.trip.pk}/proposal/").status_code == 404


def test_another_customers_trip_and_proposal_ids_answer_404(alpha, mailbox):
    mine, theirs = Quote(alpha), Quote(alpha, name="李雷", title="北海道滑雪")
    my_proposal, their_proposal = mine.send(), theirs.send()
    client = mine.client()
    assert client.get(f"/portal/trips/{mine.trip.pk}/proposal/").status_code == 200
    assert client.get(f"/portal/trips/{mine.trip.pk}/proposal/{my_proposal.pk}/pdf/").status_code == 200
    for url in (f"/portal/trips/{theirs.trip.pk}/proposal/",
                f"/portal/trips/{theirs.trip.pk}/proposal/{their_proposal.pk}/pdf/",
                f"/portal/trips/{mine.trip.pk}/proposal/{their_proposal.pk}/pdf/",
                f"/portal/trips/{theirs.trip.pk}/itinerary.pdf"):
        assert client.get(url).status_code == 404, url
    assert _accept(client, theirs.trip, their_proposal).status_code == 404
    with tenant_context(alpha):
        assert not Acceptance.objects.exists()
    connection.set_schema_to_public()
    # A quote's itinerary PDF is not there yet, even for its own customer.
    assert client.get(f"/portal/trips/{mine.trip.pk}/itinerary.pdf").status_code == 404


def test_another_agencys_host_and_no_session(alpha, bravo, quote, mailbox):
    proposal = quote.send()
    client = quote.client()
    other = Client(HTTP_HOST=host("bravo"))
    other.cookies = client.cookies  # the same browser, on bravo's host
    for url in (f"/portal/trips/{quote.trip.pk}/proposal/", f"/portal/trips/{quote.trip.pk}/proposal/{proposal.pk}/pdf/",
                f"/portal/trips/{quote.trip.pk}/itinerary.pdf"):
        assert other.get(url).status_code in (302, 404), url
        anonymous = Client(HTTP_HOST=host("alpha")).get(url)
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/portal/sign-in/"), url
    assert _accept(Client(HTTP_HOST=host("alpha")), quote.trip, proposal).status_code == 302
    with tenant_context(alpha):
        assert not Acceptance.objects.exists()


def test_staff_send_from_the_trip_page_and_the_roles(alpha, quote, mailbox, page_client):
    sales = page_client("alpha", "sales")
    box = sales.get(f"/trips/{quote.trip.pk}/proposals/")
    assert box.status_code == 200 and 'data-test="proposal-send"' in box.content.decode()
    with tenant_context(alpha):
        address = quote.customer.emails.first().address
    connection.set_schema_to_public()
    response = sales.post(f"/trips/{quote.trip.pk}/proposals/send/", {
        "recipient": f"{quote.customer.pk}:{address}", "included": "早餐", "excluded": "", "terms": TERMS,
        "deposit_amount": "500.00", "message": ""})
    assert response.status_code == 302
    with tenant_context(alpha):
        proposal = Proposal.objects.get(trip=quote.trip)
        assert proposal.snapshot["deposit"] == "500.00" and proposal.snapshot["deposit_percent"] is None
        assert proposal.sent_by == quote.sales
    connection.set_schema_to_public()
    assert len(mailbox) == 1
    pdf_answer = sales.get(f"/trips/{quote.trip.pk}/proposal.pdf?version=1")
    assert pdf_answer.status_code == 200 and pdf_answer.content.startswith(b"%PDF")
    assert sales.get(f"/trips/{quote.trip.pk}/proposal.pdf?version=9").status_code == 404
    # Finance sees the box and the PDFs, and cannot send.
    finance = page_client("alpha", "finance")
    assert finance.get(f"/trips/{quote.trip.pk}/proposals/").status_code == 200
    assert 'data-test="proposal-send"' not in finance.get(f"/trips/{quote.trip.pk}/proposals/").content.decode()
    assert finance.post(f"/trips/{quote.trip.pk}/proposals/send/", {
        "recipient": f"{quote.customer.pk}:{address}"}).status_code == 403
    with tenant_context(alpha):
        with pytest.raises(Exception):
            services.proposal_send(actor=staff(alpha, "finance"), trip=quote.trip, included="", excluded="", terms="")
    connection.set_schema_to_public()
    # Bravo's staff on alpha's ids (every role sees trips: finance is the role without the capability).
    bravo_sales = page_client("bravo", "sales")
    for url in (f"/trips/{quote.trip.pk}/proposals/", f"/trips/{quote.trip.pk}/proposal.pdf",
                f"/trips/{quote.trip.pk}/itinerary.pdf"):
        assert bravo_sales.get(url).status_code == 404, url
    assert bravo_sales.post(f"/trips/{quote.trip.pk}/proposals/send/", {
        "recipient": f"{quote.customer.pk}:{address}"}).status_code == 404


def test_only_a_quote_with_items_and_a_person_with_an_address_gets_a_proposal(alpha, mailbox):
    with tenant_context(alpha):
        customer = person("张伟", _address())
        trip = confirmed_trip(customer, title="已确认")
        with pytest.raises(ValidationError) as refused:
            services.proposal_send(actor=staff(alpha, "sales"), trip=trip, included="", excluded="", terms="")
        assert "trip" in refused.value.message_dict
        empty = trips.trip_create(actor=None, customer=customer, title="空报价")
        with pytest.raises(ValidationError) as refused:
            services.proposal_send(actor=staff(alpha, "sales"), trip=empty, included="", excluded="", terms="")
        assert "trip" in refused.value.message_dict
        with pytest.raises(ValidationError) as refused:
            services.proposal_send(actor=staff(alpha, "sales"), trip=trip, included="", excluded="", terms="",
                                   deposit_amount="-1")
    connection.set_schema_to_public()
    assert mailbox == []


# --- the PDFs ------------------------------------------------------------------------------------------

def _text(document: bytes) -> str:
    pypdf = pytest.importorskip("pypdf")
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(document)).pages)


def test_the_proposal_and_itinerary_pdfs_carry_chinese_text(alpha, quote, mailbox):
    proposal = quote.send()
    with tenant_context(alpha):
        proposal = Proposal.objects.get(pk=proposal.pk)
        document = pdf.proposal_pdf(proposal)
        assert document.startswith(b"%PDF")
        text = _text(document)
        assert "京都红叶" in text and "取消条款" in text and "Secret Supplier" not in text
        customer = person("赵敏", _address())
        trip = confirmed_trip(customer, title="桂林山水")
        itinerary = pdf.itinerary_pdf(trip)
        assert itinerary.startswith(b"%PDF") and "桂林山水" in _text(itinerary)
    connection.set_schema_to_public()


def test_the_pdf_renderer_fetches_nothing_but_data_uris():
    fetcher = pdf._fetcher()
    for url in ("http://169.254.169.254/latest/meta-data/", "https://example.com/logo.png", "file:///etc/passwd"):
        with pytest.raises(Exception):
            fetcher(url)
    assert fetcher("data:text/plain;base64,aGk=") is not None


def test_the_hash_is_of_the_canonical_snapshot(alpha, quote, mailbox):
    proposal = quote.send()
    with tenant_context(alpha):
        stored = Proposal.objects.get(pk=proposal.pk)
        assert services.content_hash(stored.snapshot) == stored.content_hash == services.fresh_hash(stored)
        assert Decimal(stored.snapshot["total"]) == Decimal("3000.00")
    connection.set_schema_to_public()


def test_a_refused_confirmation_mail_is_sent_by_the_retry(alpha, quote, mailbox, settings):
    proposal = quote.send()
    with tenant_context(alpha):
        acceptance = services.proposal_accept(customer=quote.customer, proposal=proposal, typed_name="王芳", agreed=True,
                                              shown_hash=proposal.content_hash, address="203.0.113.9")
        port = settings.EMAIL_PORT
        settings.EMAIL_PORT = 9  # nothing listens: the mail server is unreachable
        with pytest.raises(OSError):
            send_confirmation.run(acceptance.pk)
        assert Acceptance.objects.get(pk=acceptance.pk).confirmation_sent_at is None  # the claim is released
        settings.EMAIL_PORT = port
        mailbox.clear()
        assert send_confirmation.run(acceptance.pk) is True
        assert Acceptance.objects.get(pk=acceptance.pk).confirmation_sent_at is not None
    connection.set_schema_to_public()
    assert len(mailbox) == 1


def test_a_corporate_quote_goes_to_the_booker_who_accepts_and_a_traveler_only_reads(alpha, mailbox):
    from crm.customers.services import employment_set

    from .portal_helpers import booker_of, company

    with tenant_context(alpha):
        account = company("环球贸易有限公司")
        booker = person("订票员 小李", _address())
        booker_of(account, booker)
        traveler = person("出差人 老张", _address())
        employment_set(actor=None, company=account, person=traveler, is_booker=False, is_traveler=True)
        trip = trips.trip_create(actor=None, customer=account, title="东京出差")
        trips.traveler_add(actor=None, trip=trip, customer=traveler, company=account)
        trips.item_add(actor=None, trip=trip, kind="flight", description="上海—东京", sell="3200.00", cost="3000.00")
        assert [p.pk for p in services.recipients(trip)] == [booker.pk, traveler.pk]
        proposal = services.proposal_send(actor=staff(alpha, "sales"), trip=trip, included="", excluded="", terms="")
        assert proposal.recipient_id == booker.pk
    connection.set_schema_to_public()
    reader = portal_client(alpha, traveler)
    page = reader.get(f"/portal/trips/{trip.pk}/proposal/").content.decode()
    assert "东京出差" in page and 'data-test="proposal-accept"' not in page
    assert _accept(reader, trip, proposal, typed_name="老张").status_code == 403
    signer = portal_client(alpha, booker)
    assert 'data-test="proposal-accept"' in signer.get(f"/portal/trips/{trip.pk}/proposal/").content.decode()
    assert _accept(signer, trip, proposal, typed_name="李明").status_code == 302
    with tenant_context(alpha):
        assert Trip.objects.get(pk=trip.pk).status == Trip.Status.CONFIRMED
        assert Acceptance.objects.get(proposal=proposal).customer_id == booker.pk
    connection.set_schema_to_public()


def test_the_api_lists_a_trips_versions_with_their_acceptance(alpha, quote, mailbox, api_client):
    first = quote.send()
    second = quote.send(deposit_amount="100.00")
    with tenant_context(alpha):
        services.proposal_accept(customer=quote.customer, proposal=second, typed_name="王芳", agreed=True,
                                 shown_hash=second.content_hash, address="203.0.113.9")
    connection.set_schema_to_public()
    response = api_client("alpha", "finance").get(f"/api/v1/trips/{quote.trip.pk}/proposals/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [row["version"] for row in body] == [2, 1]
    assert body[0]["acceptance"]["typed_name"] == "王芳" and body[0]["acceptance"]["address"] == "203.0.113.9"
    assert body[0]["snapshot"]["deposit"] == "100.00" and body[1]["acceptance"] is None
    assert body[1]["superseded_at"] and body[1]["content_hash"] == first.content_hash
    assert "cost" not in str(body[0]["snapshot"])
    assert api_client("bravo", "admin").get(f"/api/v1/trips/{quote.trip.pk}/proposals/").status_code == 404
    assert api_client("alpha").get(f"/api/v1/trips/{quote.trip.pk}/proposals/").status_code == 401


def test_an_expired_proposal_cannot_be_accepted(alpha, quote, mailbox, page_client):
    from datetime import date, timedelta

    with tenant_context(alpha):
        with pytest.raises(ValidationError) as refused:
            services.proposal_send(actor=quote.sales, trip=quote.trip, included="", excluded="", terms="",
                                   valid_until=date.today() - timedelta(days=3))
        assert "valid_until" in refused.value.message_dict
    connection.set_schema_to_public()
    proposal = quote.send(valid_until=date.today() + timedelta(days=7))
    with tenant_context(alpha):
        Proposal.objects.filter(pk=proposal.pk).update(valid_until=date.today() - timedelta(days=2))
    connection.set_schema_to_public()
    client = quote.client()
    page = client.get(f"/portal/trips/{quote.trip.pk}/proposal/").content.decode()
    assert 'data-test="proposal-expired"' in page and 'data-test="proposal-accept"' not in page
    response = _accept(client, quote.trip, proposal)
    assert response.status_code == 400
    with tenant_context(alpha):
        assert not Acceptance.objects.exists()
    connection.set_schema_to_public()
    assert "Expired" in page_client("alpha", "sales").get(f"/trips/{quote.trip.pk}/proposals/").content.decode()
