"""Travel-policy services: the rules document, versions, checks, trip checks, approvals, the report,
and the translations of every engine code."""
import re
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation
from django_tenants.utils import tenant_context

from crm.customers.models import Contact
from crm.pipeline.models import Task
from crm.policies import documents, engine, messages, selectors, services
from crm.policies.models import Approval, BookingCheck, PolicyVersion

from .policy_factories import (employ, flight_offer, hotel_offer, person, policy, setup_account, trip_with_items,
                               user)
from .test_policy_engine import policy as reference_policy

pytestmark = pytest.mark.django_db


# --- the rules document ---------------------------------------------------------------------------

def test_document_round_trips_to_the_engine_policy():
    original = reference_policy()
    document = documents.from_policy(original)
    again = documents.to_policy(document, version=original.version, currency=original.currency)
    assert again == original
    assert documents.from_policy(again) == document
    assert documents.rule_count(document) == 4 + 6 + 1 + 1 + 1 + 1 + 1 + 1


def test_document_errors_are_keyed_by_path():
    with pytest.raises(ValidationError) as caught:
        documents.clean_document({
            "cabin_rules": [{"max_cabin": "economy"}, {"max_cabin": "sofa", "min_grade": "X9"}],
            "fare_rule": {"kind": "cheapest", "window_minutes": "-5"},
            "hotel_caps": [{"city_tier": 4, "nightly_cap": "abc"}],
            "long_flight": {"over_minutes": 360, "cabin": "business"},
            "approvers": ["ceo"], "out_of_policy": "maybe", "advance_days": "x"})
    errors = caught.value.message_dict
    assert set(errors) == {"cabin_rules.1.max_cabin", "cabin_rules.1.min_grade", "fare_rule.kind",
                           "fare_rule.window_minutes", "hotel_caps.0.city_tier", "hotel_caps.0.nightly_cap",
                           "long_flight.min_grade", "approvers", "out_of_policy", "advance_days"}


def test_document_normalises():
    doc = documents.clean_document({"cabin_rules": [{"max_cabin": "business", "min_grade": "d1",
                                                     "departments": "Sales， 市场部"}],
                                    "preferred_airlines": "ca, mu", "hotel_caps": []})
    assert doc["cabin_rules"] == [{"max_cabin": "business", "min_grade": "D1", "departments": ["Sales", "市场部"]}]
    assert doc["preferred_airlines"] == ["CA", "MU"] and doc["approvers"] == ["traveler_manager"]


# --- versions -------------------------------------------------------------------------------------

def test_saving_makes_versions_and_a_booking_is_judged_by_the_version_in_force(alpha):
    with tenant_context(alpha):
        account, _boss, traveler, v1 = setup_account(alpha)
        v2_from = timezone.now() - timedelta(days=5)
        v2 = policy(account, rules={"cabin_rules": [{"max_cabin": "business"}]}, effective_from=v2_from,
                    actor=user(alpha, "manager"), note="Business for all")
        assert (v1.number, v2.number) == (1, 2)
        assert PolicyVersion.objects.get(pk=v1.pk).rules == v1.rules  # never edited in place
        offer = flight_offer(cabin="business", fare="4000")
        before = services.policy_check(account=account, kind="flight", offer=offer, traveler=traveler,
                                       booked_at=v2_from - timedelta(days=1))
        after = services.policy_check(account=account, kind="flight", offer=offer, traveler=traveler)
        assert before.version == v1 and not before.verdict.compliant
        assert [r.code for r in before.verdict.failed] == ["cabin.not_allowed"]
        assert after.version == v2 and after.verdict.results[0].code == "cabin.allowed"
        assert selectors.policy_in_force(account, v1.effective_from - timedelta(seconds=1)) is None
        with pytest.raises(ValidationError) as caught:
            policy(account, effective_from=v2_from - timedelta(days=1))
        assert "effective_from" in caught.value.message_dict
        history = selectors.version_history(account)
        assert [row.version.number for row in history] == [2, 1] and history[0].in_force
        assert [(key, str(label)) for key, label, _old, _new in history[0].changes] == [("cabin_rules", "Cabin rules")]


VERSION_CASES = [  # (booked, relative to version 2's start; version expected; verdict of a business fare for P2)
    pytest.param(timedelta(days=-40), None, None, id="before-any-version"),
    pytest.param(timedelta(days=-1), 1, "cabin.not_allowed", id="under-version-1"),
    pytest.param(timedelta(seconds=-1), 1, "cabin.not_allowed", id="a-second-before-version-2"),
    pytest.param(timedelta(0), 2, "cabin.allowed", id="exactly-when-version-2-starts"),
    pytest.param(timedelta(days=3), 2, "cabin.allowed", id="under-version-2"),
    pytest.param(timedelta(days=10), 3, "cabin.not_allowed", id="under-version-3-planned-ahead"),
]


@pytest.mark.parametrize("offset, number, code", VERSION_CASES)
def test_the_version_in_force_at_booking_time_judges(alpha, offset, number, code):
    with tenant_context(alpha):
        account, _boss, traveler, v1 = setup_account(alpha)  # in force from 30 days ago
        start = timezone.now() - timedelta(days=5)
        policy(account, rules={"cabin_rules": [{"max_cabin": "business"}]}, effective_from=start)
        policy(account, effective_from=start + timedelta(days=10))  # back to economy, from 5 days ahead
        booked = start + offset
        found = selectors.policy_in_force(account, booked)
        assert (found.number if found else None) == number
        if number is None:
            with pytest.raises(ValidationError):
                services.policy_check(account=account, kind="flight", traveler=traveler, booked_at=booked,
                                      offer=flight_offer(cabin="business", fare="4000"))
            return
        outcome = services.policy_check(account=account, kind="flight", traveler=traveler, booked_at=booked,
                                        offer=flight_offer(cabin="business", fare="4000"))
        assert outcome.version.number == number and outcome.verdict.results[0].code == code


def test_policy_save_field_errors(alpha):
    with tenant_context(alpha):
        account, boss, _traveler, _v = setup_account(alpha)
        outsider = person("Outsider")
        with pytest.raises(ValidationError) as caught:
            services.policy_save(actor=None, account=account, rules={**documents.DEFAULT_DOCUMENT,
                                                                     "approvers": ["travel_manager"]},
                                 currency="yuan", travel_manager=None)
        assert set(caught.value.message_dict) == {"currency", "travel_manager"}
        with pytest.raises(ValidationError) as caught:
            services.policy_save(actor=None, account=account, rules={}, travel_manager=outsider)
        assert set(caught.value.message_dict) == {"travel_manager"}
        with pytest.raises(ValidationError) as caught:
            services.policy_save(actor=None, account=boss, rules={})
        assert set(caught.value.message_dict) == {"account"}


# --- checks ---------------------------------------------------------------------------------------

def test_check_uses_the_travelers_grade_and_explains_every_rule(alpha):
    with tenant_context(alpha):
        account, boss, traveler, _v = setup_account(alpha)
        at = (timezone.now() + timedelta(days=20)).replace(hour=9, minute=0, second=0, microsecond=0)
        offer = flight_offer(cabin="business", fare="4000", at=at)
        cheaper = [flight_offer(cabin="economy", fare="1400", number="MU5301", at=at + timedelta(minutes=30)),
                   flight_offer(cabin="economy", fare="1300", number="CZ3001", at=at + timedelta(hours=5))]
        outcome = services.policy_check(account=account, kind="flight", offer=offer, alternatives=cheaper,
                                        traveler=traveler, requested_departure=at)
        assert outcome.grade == "P2" and outcome.department == "Sales"
        codes = {r.rule: r.code for r in outcome.verdict.results}
        # MU5301 (economy, +30 min) is in policy for P2: the lowest logical fare of the business fare too.
        assert codes == {"cabin": "cabin.not_allowed", "fare": "fare.above_lowest"}
        assert outcome.verdict.cheapest_compliant.flight_numbers == ("CZ3001",)  # outside the window, still compliant
        assert outcome.verdict.missed_saving == D("2700.00") and outcome.price == D("4000.00")
        reason = selectors.explained(outcome.results)[0]["reason"]
        assert reason == "Business class not allowed for grade P2 on a 3 h 10 min flight (at most Economy)"
        # The manager (M3) may fly business on a long flight.
        long = services.policy_check(account=account, kind="flight", traveler=boss,
                                     offer=flight_offer(cabin="business", fare="9000", minutes=400))
        assert long.verdict.results[0].code == "cabin.long_flight"
        # Without a traveler: grade and department as given.
        direct = services.policy_check(account=account, kind="hotel", grade="m1", offer=hotel_offer(rate="1100",
                                                                                                    city="上海"))
        assert direct.verdict.compliant and direct.grade == "M1"


def test_check_field_errors(alpha):
    with tenant_context(alpha):
        account, _boss, traveler, _v = setup_account(alpha)
        stranger = person("路人 Stranger")
        with pytest.raises(ValidationError) as caught:
            services.policy_check(account=account, kind="flight", traveler=stranger, offer=flight_offer())
        assert set(caught.value.message_dict) == {"traveler"}
        bad = {**flight_offer(), "fare": "-1", "cabin": "deluxe", "departure": "tomorrow"}
        with pytest.raises(ValidationError) as caught:
            services.policy_check(account=account, kind="flight", traveler=traveler, offer=bad,
                                  alternatives=[{**flight_offer(), "stops": 9}])
        assert set(caught.value.message_dict) == {"offer.fare", "offer.cabin", "offer.departure",
                                                  "alternatives.0.stops"}
        with pytest.raises(ValidationError) as caught:
            services.policy_check(account=account, kind="train", offer={})
        assert set(caught.value.message_dict) == {"kind"}
        with pytest.raises(ValidationError) as caught:
            services.policy_check(account=account, kind="hotel", grade="Z1", offer=hotel_offer())
        assert set(caught.value.message_dict) == {"grade"}


def test_exchange_rates_convert_offers_and_a_missing_rate_fails_the_rule(alpha):
    with tenant_context(alpha):
        account, _boss, traveler, _v = setup_account(alpha)
        missing = services.policy_check(account=account, kind="hotel", traveler=traveler,
                                        offer=hotel_offer(rate="100", currency="USD"))
        assert [r.code for r in missing.verdict.failed] == ["fx.missing"] and missing.price is None
        services.exchange_rate_set(actor=user(alpha, "admin"), currency="usd", rate="7.2")
        ok = services.policy_check(account=account, kind="hotel", traveler=traveler,
                                   offer=hotel_offer(rate="100", currency="USD", city="深圳"))
        assert ok.verdict.compliant and ok.price == D("1440.00")  # 2 nights × 720
        over = services.policy_check(account=account, kind="hotel", traveler=traveler,
                                     offer=hotel_offer(rate="120", currency="USD", city="深圳"))
        assert [r.code for r in over.verdict.failed] == ["hotel_cap.over"]
        for currency, rate, field in (("CNY", "1", "currency"), ("EUR", "0", "rate"), ("EURO", "7", "currency"),
                                      ("EUR", "1.123456789", "rate")):
            with pytest.raises(ValidationError) as caught:
                services.exchange_rate_set(actor=None, currency=currency, rate=rate)
            assert set(caught.value.message_dict) == {field}


# --- trip checks and approvals --------------------------------------------------------------------

def recorded(agency, *, offer=None, rules=None, manager_email="boss@acme.example.cn", kind="flight"):
    account, boss, traveler, version = setup_account(agency, rules=rules, manager_email=manager_email)
    owner = user(agency, "manager")
    trip, flight, hotel = trip_with_items(account, traveler, owner=owner)
    item = flight if kind == "flight" else hotel
    check = services.booking_check_record(actor=user(agency, "sales"), item=item, traveler=traveler,
                                          offer=offer or flight_offer(cabin="business", fare="4000"),
                                          alternatives=[flight_offer(fare="1500", number="MU5301")])
    return check, trip, traveler, boss


def test_an_out_of_policy_trip_item_asks_the_travelers_manager(alpha):
    with tenant_context(alpha):
        check, trip, traveler, boss = recorded(alpha)
        assert not check.compliant and check.failed_codes == ["cabin.not_allowed", "fare.above_lowest"]
        assert (check.price, check.cheapest_price, check.missed_saving) == (D("4000.00"), D("1500.00"), D("2500.00"))
        approval = Approval.objects.get(booking_check=check)
        assert approval.status == "pending" and approval.approver == boss
        assert approval.approver_email == "boss@acme.example.cn" and approval.requested_by == user(alpha, "sales")
        assert Contact.objects.filter(customer=trip.customer, summary__contains="approval requested").exists()
        assert Contact.objects.filter(customer=traveler, summary__contains="out of policy").exists()
        # A second check of the same item and traveler supersedes the first.
        again = services.booking_check_record(actor=None, item=check.item, traveler=traveler,
                                              offer=flight_offer(fare="1500"))
        assert again.compliant
        assert list(BookingCheck.objects.filter(item=check.item, is_current=True)) == [again]
        assert not Approval.objects.filter(booking_check=again).exists()


def test_forbidden_out_of_policy_is_recorded_as_blocked_without_approval(alpha):
    with tenant_context(alpha):
        check, *_rest = recorded(alpha, rules={"out_of_policy": "forbidden"})
        assert check.forbidden and not check.compliant
        assert not Approval.objects.filter(booking_check=check).exists()


def test_trip_checks_refuse_strangers_and_other_kinds(alpha):
    with tenant_context(alpha):
        account, _boss, traveler, _v = setup_account(alpha)
        trip, flight, _hotel = trip_with_items(account, traveler)
        transfer = trip.items.create(kind="transfer", description="Airport transfer")
        with pytest.raises(ValidationError) as caught:
            services.booking_check_record(actor=None, item=flight, traveler=person("Not on the trip"),
                                          offer=flight_offer())
        assert set(caught.value.message_dict) == {"traveler"}
        with pytest.raises(ValidationError) as caught:
            services.booking_check_record(actor=None, item=transfer, traveler=traveler, offer=flight_offer())
        assert set(caught.value.message_dict) == {"item"}
        with pytest.raises(ValidationError) as caught:
            services.booking_check_record(actor=None, item=flight, traveler=traveler,
                                          offer=flight_offer(currency="JPY"))
        assert set(caught.value.message_dict) == {"offer.currency"}


def test_who_may_decide_and_only_once(alpha):
    with tenant_context(alpha):
        check, trip, _traveler, _boss = recorded(alpha)
        approval = check.approval
        for role in ("sales", "service", "finance"):
            with pytest.raises(PermissionDenied):
                services.approval_decide(approval=approval, decision="approved", actor=user(alpha, role))
        approval.requested_by = user(alpha, "manager")
        approval.save()
        with pytest.raises(PermissionDenied):  # the requester, although a manager
            services.approval_decide(approval=approval, decision="approved", actor=user(alpha, "manager"))
        with pytest.raises(ValidationError) as caught:
            services.approval_decide(approval=approval, decision="rejected", actor=user(alpha, "admin"))
        assert set(caught.value.message_dict) == {"comment"}
        decided = services.approval_decide(approval=approval, decision="approved", comment="客户会议，批准",
                                           actor=user(alpha, "admin"))
        assert decided.status == "approved" and decided.decided_by == user(alpha, "admin")
        assert decided.decided_via == "app" and decided.decided_at is not None
        task = Task.objects.get(key=f"approval-decided:{approval.pk}")
        assert task.kind == Task.Kind.APPROVAL and task.owner == trip.owner and task.trip == trip
        with pytest.raises(services.AlreadyDecided):
            services.approval_decide(approval=approval, decision="rejected", comment="no", actor=user(alpha, "admin"))
        approval.refresh_from_db()
        assert approval.status == "approved" and approval.comment == "客户会议，批准"


def test_approval_email_and_signed_link(alpha, bravo, mailbox, page_client):
    with tenant_context(alpha):
        check, _trip, _traveler, _boss = recorded(alpha)
        approval = check.approval
        assert services.approval_email_send(approval_id=approval.pk) is True
        assert services.approval_email_send(approval_id=approval.pk) is False  # never twice
    [message] = mailbox
    assert message["To"] == "boss@acme.example.cn"
    body = message.get_payload(decode=True).decode()
    assert "Business class not allowed for grade P2" in body
    link = re.search(r"https?://\S+/approval/\S+/", body).group(0)
    path = "/" + link.split("/", 3)[3]
    assert page_client("bravo").get(path).status_code == 404  # alpha's link on bravo's host
    assert page_client(None).get(path).status_code == 404  # nor on the platform domain
    client = page_client("alpha")  # no sign-in: the link is the key
    page = client.get(path)
    assert page.status_code == 200 and b'data-test="answer-form"' in page.content
    refused = client.post(path, {"decision": "rejected", "comment": ""})
    assert refused.status_code == 400 and b'data-field="comment"' in refused.content
    done = client.post(path, {"decision": "approved", "comment": "OK, client meeting"})
    assert done.status_code == 200 and b'data-test="thanks"' in done.content
    assert client.post(path, {"decision": "rejected", "comment": "changed my mind"}).status_code == 409
    with tenant_context(alpha):
        approval.refresh_from_db()
        assert (approval.status, approval.decided_via, approval.decided_by_person.name) == (
            "approved", "email", "李经理 Manager Li")
    assert page_client("alpha").get(path[:-5] + "xxxx/").status_code == 404  # tampered


def test_an_expired_approval_link_is_refused(alpha, page_client, monkeypatch):
    with tenant_context(alpha):
        check, *_rest = recorded(alpha)
        path = "/approval/" + services.approval_token(check.approval) + "/"
    assert page_client("alpha").get(path).status_code == 200
    monkeypatch.setattr(services, "APPROVAL_LINK_MAX_AGE", timedelta(seconds=-1))
    response = page_client("alpha").get(path)
    assert response.status_code == 404 and b'data-test="invalid"' in response.content


def test_an_approval_without_an_email_is_not_sent(alpha, mailbox):
    with tenant_context(alpha):
        check, *_rest = recorded(alpha, manager_email=None)
        approval = check.approval
        assert approval.approver is not None and approval.approver_email == ""
        assert services.approval_email_send(approval_id=approval.pk) is False
    assert mailbox == []


# --- the report -----------------------------------------------------------------------------------

def test_compliance_report_figures(alpha):
    with tenant_context(alpha):
        account, _boss, traveler, _v = setup_account(alpha)
        colleague = person("张伟 Zhang Wei")
        employ(account, colleague, grade="P3")
        trip, flight, hotel = trip_with_items(account, traveler)
        trip.travelers.create(customer=colleague, company=account)
        services.booking_check_record(actor=None, item=flight, traveler=traveler,
                                      offer=flight_offer(cabin="business", fare="4000"),
                                      alternatives=[flight_offer(fare="1500", number="MU5301")])
        services.booking_check_record(actor=None, item=flight, traveler=colleague, offer=flight_offer(fare="1500"))
        over = services.booking_check_record(actor=None, item=hotel, traveler=traveler, offer=hotel_offer(rate="900"),
                                             alternatives=[hotel_offer(rate="550", name="全季酒店", chain="Ji")])
        services.approval_decide(approval=over.approval, decision="rejected", comment="Too dear",
                                 actor=user(alpha, "admin"))
        today = timezone.localdate()
        report = selectors.compliance_report(account=account, date_from=today - timedelta(days=1), date_to=today)
        assert (report.checked, report.compliant, report.compliance_rate) == (3, 1, 33.3)
        assert report.missed_savings == D("2500.00") + D("700.00")
        assert [(code, n) for code, _label, n in report.reasons] == [("cabin.not_allowed", 1), ("fare.above_lowest", 1),
                                                                         ("hotel_cap.over", 1)]
        assert report.approvals == {"pending": 1, "approved": 0, "rejected": 1}
        [row] = report.trips
        assert (row["paid"], row["within_policy"], row["saving"]) == (D("7300.00"), D("4100.00"), D("3200.00"))
        assert report.proposed_saving == D("3200.00")
        nothing = selectors.compliance_report(account=account, date_from=today - timedelta(days=30),
                                              date_to=today - timedelta(days=2))
        assert nothing.checked == 0 and nothing.compliance_rate is None and nothing.trips == []


# --- translations ---------------------------------------------------------------------------------

def test_every_engine_code_has_a_translatable_reason_with_the_same_placeholders():
    assert set(messages.REASONS) == set(engine.MESSAGES)
    placeholder = re.compile(r"%\((\w+)\)s")
    for code, text in engine.MESSAGES.items():
        assert str(messages.REASONS[code]) == text, code
        assert placeholder.findall(str(messages.REASONS[code])) == placeholder.findall(text)
    assert {spec.name for spec in engine.RULES} <= set(messages.RULE_LABELS)


def test_reasons_follow_the_active_language():
    params = {"cabin": "Business class", "grade": "P2", "duration": "2 h 10 min", "allowed": "Economy"}
    with translation.override("en"):
        assert messages.reason("cabin.not_allowed", params) == engine.MESSAGES["cabin.not_allowed"] % params
    with translation.override("zh-hans"):
        text = messages.reason("cabin.not_allowed", params)
        assert "P2" in text and messages.duration_shown(2, 10) in text  # the duration in the reader's units too


# --- the job and the demo -------------------------------------------------------------------------

def test_the_approval_task_sends_inside_the_agency(alpha, mailbox):
    from crm.policies.tasks import send_approval_request

    with tenant_context(alpha):
        check, *_rest = recorded(alpha)
        assert send_approval_request.run(check.approval.pk) is True
        assert send_approval_request.run(check.approval.pk) is False
    assert len(mailbox) == 1


def test_demo_policies(alpha):
    from crm.customers.demo import seed_customers
    from crm.policies.demo import seed_policies
    from crm.policies.models import TravelPolicy

    seed_customers(alpha, people=120, companies=4, rng_seed=5)
    counts = seed_policies(alpha)
    assert counts["policies"] >= 2 and counts["checks"] == 4 * counts["policies"] and counts["approvals"] >= 1
    assert seed_policies(alpha) == {"policies": 0, "checks": 0, "approvals": 0}  # idempotent
    with tenant_context(alpha):
        assert all(p.versions.count() == 2 for p in TravelPolicy.objects.all())
        assert Approval.objects.filter(status="approved").exists() and Approval.objects.filter(status="pending").exists()
        assert BookingCheck.objects.filter(compliant=True).exists()
