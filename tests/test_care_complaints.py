"""Complaints (R-CARE-2): deadlines, owners, transitions, resolution and compensation, escalation."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.care import services, tasks
from crm.care.models import Complaint
from crm.customers.models import Contact
from crm.pipeline.models import Task
from crm.pipeline.services import IllegalTransition

from .care_factories import customer, trip, user

pytestmark = pytest.mark.django_db
S = Complaint.Status


def log(agency, *, severity="medium", **kwargs) -> Complaint:
    buyer = kwargs.pop("customer", None) or customer("王芳", email=f"c{timezone.now().timestamp()}@example.cn")
    return services.complaint_log(actor=kwargs.pop("actor", user(agency, "service")), customer=buyer,
                                  category=kwargs.pop("category", "hotel"), severity=severity,
                                  description=kwargs.pop("description", "房间很脏 The room was dirty"), **kwargs)


@pytest.mark.parametrize("severity, hours", [("critical", 4), ("high", 24), ("medium", 72), ("low", 168)])
def test_deadline_follows_the_severity(alpha, severity, hours):
    with tenant_context(alpha):
        before = timezone.now()
        complaint = log(alpha, severity=severity)
        after = timezone.now()
        assert before + timedelta(hours=hours) <= complaint.deadline_at <= after + timedelta(hours=hours)
        task = Task.objects.get(key=f"complaint:{complaint.pk}")
        assert task.kind == Task.Kind.COMPLAINT and task.due_at == complaint.deadline_at
        assert task.owner == complaint.owner


def test_logging_puts_it_on_the_timeline_in_the_agency_currency(alpha):
    with tenant_context(alpha):
        complaint = log(alpha)
        assert complaint.currency == alpha.currency and complaint.status == S.OPEN
        entry = Contact.objects.get(customer=complaint.customer, channel=Contact.Channel.COMPLAINT)
        assert entry.direction == Contact.Direction.INBOUND and "房间很脏" in entry.summary


def test_owner_defaults_to_trip_owner_then_account_manager_then_the_actor(alpha):
    with tenant_context(alpha):
        sales, manager, service = user(alpha, "sales"), user(alpha, "manager"), user(alpha, "service")
        buyer = customer("Ann", email="owner-test@example.com", owner=manager)
        journey = trip(buyer, returned_days_ago=2, owner=manager)
        assert log(alpha, customer=buyer, trip=journey).owner == manager
        assert log(alpha, customer=buyer).owner == manager
        # A salesperson may not handle complaints: the next in line gets it, not a task they cannot open.
        sold_by_sales = trip(buyer, returned_days_ago=2, owner=sales)
        assert log(alpha, customer=buyer, trip=sold_by_sales).owner == manager
        assert log(alpha, customer=customer("Sold by sales", owner=sales), trip=sold_by_sales).owner == service
        assert log(alpha, customer=customer("Nobody's")).owner == service
        assert log(alpha, customer=buyer, trip=journey, owner=manager).owner == manager


def test_logging_needs_category_severity_and_description(alpha):
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as error:
            services.complaint_log(actor=None, customer=customer("X"), category="weather", severity="huge",
                                   description="  ")
        assert set(error.value.message_dict) == {"category", "severity", "description"}
        assert not Complaint.objects.exists()


def _at(agency, status) -> Complaint:
    complaint = log(agency)
    path = {S.OPEN: [], S.IN_PROGRESS: [S.IN_PROGRESS], S.RESOLVED: [S.RESOLVED], S.CLOSED: [S.RESOLVED, S.CLOSED]}
    for step in path[status]:
        complaint = services.complaint_set_status(actor=None, complaint=complaint, status=step, resolution="Refunded")
    return complaint


LEGAL = [(S.OPEN, S.IN_PROGRESS), (S.OPEN, S.RESOLVED), (S.IN_PROGRESS, S.RESOLVED), (S.RESOLVED, S.CLOSED),
         (S.RESOLVED, S.IN_PROGRESS)]
ILLEGAL = [(a, b) for a in S.values for b in S.values if (a, b) not in LEGAL]


@pytest.mark.parametrize("start, to", LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_legal_transitions(alpha, start, to):
    with tenant_context(alpha):
        complaint = _at(alpha, start)
        entries = Contact.objects.filter(customer=complaint.customer).count()
        moved = services.complaint_set_status(actor=user(alpha, "service"), complaint=complaint, status=to,
                                              resolution="We refunded one night.")
        assert moved.status == to
        assert Complaint.objects.get(pk=complaint.pk).status == to
        assert Contact.objects.filter(customer=complaint.customer).count() == entries + 1
        if to == S.IN_PROGRESS and start == S.RESOLVED:
            assert moved.resolved_at is None  # reopened


@pytest.mark.parametrize("start, to", ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_illegal_transitions_are_a_clear_error(alpha, start, to):
    with tenant_context(alpha):
        complaint = _at(alpha, start)
        with pytest.raises(IllegalTransition) as error:
            services.complaint_set_status(actor=None, complaint=complaint, status=to, resolution="x")
        assert "status" in error.value.message_dict
        assert Complaint.objects.get(pk=complaint.pk).status == start


@pytest.mark.parametrize("kwargs, field", [
    ({"resolution": "   "}, "resolution"),
    ({"resolution": "Sorry", "compensation": "refund"}, "compensation_amount"),
    ({"resolution": "Sorry", "compensation": "voucher", "compensation_amount": ""}, "compensation_amount"),
    ({"resolution": "Sorry", "compensation": "refund", "compensation_amount": "-1"}, "compensation_amount"),
    ({"resolution": "Sorry", "compensation": "refund", "compensation_amount": "10.005"}, "compensation_amount"),
    ({"resolution": "Sorry", "compensation": "refund", "compensation_amount": "ten"}, "compensation_amount"),
    ({"resolution": "Sorry", "compensation": "cash-in-hand"}, "compensation"),
    ({"resolution": "Sorry", "compensation": "", "compensation_amount": "5"}, "compensation"),
], ids=["no-resolution", "refund-no-amount", "voucher-blank", "negative", "three-places", "text", "kind", "amount-alone"])
def test_resolving_needs_a_resolution_and_a_sound_compensation(alpha, kwargs, field):
    with tenant_context(alpha):
        complaint = log(alpha)
        with pytest.raises(ValidationError) as error:
            services.complaint_set_status(actor=None, complaint=complaint, status=S.RESOLVED, **kwargs)
        assert field in error.value.message_dict
        assert Complaint.objects.get(pk=complaint.pk).status == S.OPEN


def test_resolution_with_compensation_is_recorded_in_decimal(alpha):
    with tenant_context(alpha):
        complaint = log(alpha)
        resolved = services.complaint_set_status(actor=None, complaint=complaint, status=S.RESOLVED,
                                                 resolution="Refunded one night", compensation="refund",
                                                 compensation_amount="880.5")
        complaint.refresh_from_db()
        assert complaint.compensation_amount == Decimal("880.50") and complaint.resolved_at
        assert resolved.compensation == "refund"
        upgrade = services.complaint_set_status(actor=None, complaint=log(alpha), status=S.RESOLVED,
                                                resolution="Room upgrade next time", compensation="upgrade")
        assert upgrade.compensation_amount is None
        entry = Contact.objects.filter(customer=complaint.customer).first()
        assert "880.50" in entry.summary


def test_reassign_gives_the_new_owner_a_task(alpha):
    with tenant_context(alpha):
        complaint = log(alpha)
        manager = user(alpha, "manager")
        services.complaint_assign(actor=user(alpha, "service"), complaint=complaint, owner=manager)
        assert Complaint.objects.get(pk=complaint.pk).owner == manager
        assert Task.objects.get(key=f"complaint:{complaint.pk}:to:{manager.pk}").owner == manager
        assert "reassigned" in Contact.objects.filter(customer=complaint.customer).first().summary


# --- escalation -----------------------------------------------------------------------------------

def test_escalation_emails_the_managers_once_and_makes_one_task(alpha, mailbox):
    with tenant_context(alpha):
        overdue = log(alpha, severity="critical")
        soon = log(alpha, severity="low")
        done = _at(alpha, S.RESOLVED)
        later = timezone.now() + timedelta(hours=5)  # past the critical deadline only
        Complaint.objects.filter(pk=done.pk).update(deadline_at=timezone.now() - timedelta(hours=1))
        managers = list(services.managers())
        assert {m.role for m in managers} == {"admin", "manager"}
        assert services.complaints_escalate(now=later) == 1
        assert services.complaints_escalate(now=later) == 0
        assert tasks.escalate_complaints.run() == 0  # the real "now": nothing due
        overdue.refresh_from_db()
        assert overdue.escalated_at == later
        assert Complaint.objects.get(pk=soon.pk).escalated_at is None
        assert Complaint.objects.get(pk=done.pk).escalated_at is None
        task = Task.objects.get(key=f"escalated:{overdue.pk}")
        assert task.owner in managers and task.kind == Task.Kind.COMPLAINT
        assert Task.objects.filter(key__startswith="escalated:").count() == 1
    assert sorted(m["To"] for m in mailbox) == sorted(m.email for m in managers)
    body = mailbox[0].get_payload(decode=True).decode()
    assert "王芳" in body and f"/complaints/{overdue.pk}/" in body


def test_escalation_with_the_mail_server_down_is_retried_later(alpha, settings, mailbox):
    smtp_port = settings.EMAIL_PORT
    with tenant_context(alpha):
        overdue = log(alpha, severity="critical")
        later = timezone.now() + timedelta(hours=5)
        settings.EMAIL_PORT = 1
        with pytest.raises(OSError):
            services.complaints_escalate(now=later)
        assert Complaint.objects.get(pk=overdue.pk).escalated_at is None
        settings.EMAIL_PORT = smtp_port
        assert services.complaints_escalate(now=later) == 1
    assert len(mailbox) == len(list_managers(alpha))


def list_managers(agency):
    with tenant_context(agency):
        return list(services.managers())
