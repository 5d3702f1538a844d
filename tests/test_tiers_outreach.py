"""Proactive outreach (R-TIER-1): a tier's "contact every N days" becomes a task for the account
manager when we have been silent that long; never two open at once; another agency untouched."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from crm.customers import services as crm_services
from crm.customers.models import ChangeLog, Contact
from crm.pipeline.models import Task
from crm.tiers import services

from .conftest import staff
from .tier_factories import booking, tier
from .task_checks import assert_made_as_task_create

pytestmark = pytest.mark.django_db


def placed(agency, name: str, *, spend: str = "50000", owner_role: str = "sales"):
    """A customer of ``agency`` with an account manager, in the Gold tier (outreach every 14 days)."""
    customer = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name=name,
                                            owner=staff(agency, owner_role))
    booking(customer, spend)
    return customer


def outreach_tasks(customer) -> list[Task]:
    return list(Task.objects.filter(customer=customer, kind=Task.Kind.OUTREACH))


def test_silence_longer_than_the_tier_asks_gives_the_owner_one_task(alpha):
    with tenant_context(alpha):
        tier("Gold", min_spend_12m=Decimal("10000"), outreach_days=14)
        tier("Standard")
        silent = placed(alpha, "王芳")
        recent = placed(alpha, "李雷")
        small = placed(alpha, "赵六", spend="100")  # Standard: no outreach asked
        crm_services.contact_add(actor=staff(alpha, "sales"), customer=recent, channel=Contact.Channel.CALL,
                                 summary="Checked in", at=timezone.now() - timedelta(days=3))
        services.assignment_run()
        assert services.outreach_run() == 1
        [task] = outreach_tasks(silent)
        assert task.owner == staff(alpha, "sales") and "王芳 (Gold)" in task.title and "never" in task.notes
        assert_made_as_task_create(task)
        assert outreach_tasks(recent) == [] and outreach_tasks(small) == []
        assert services.outreach_run() == 0  # one open outreach task at most
        assert services.outreach_run(now=timezone.now() + timedelta(days=1)) == 0


def test_an_old_contact_counts_as_silence_and_an_inbound_one_does_not_answer(alpha):
    with tenant_context(alpha):
        tier("Gold", min_spend_12m=Decimal("10000"), outreach_days=14)
        customer = placed(alpha, "王芳")
        crm_services.contact_add(actor=staff(alpha, "sales"), customer=customer, channel=Contact.Channel.EMAIL,
                                 summary="Sent the brochure", at=timezone.now() - timedelta(days=20))
        crm_services.contact_add(actor=None, customer=customer, channel=Contact.Channel.CALL,
                                 direction=Contact.Direction.INBOUND, summary="Called us",
                                 at=timezone.now() - timedelta(days=1))
        services.assignment_run()
        assert services.outreach_run() == 1
        [task] = outreach_tasks(customer)
        assert "every 14 days" in task.notes and "never" not in task.notes
        # once done, the next one comes only after another silence of 14 days
        Task.objects.filter(pk=task.pk).update(done_at=timezone.now())
        crm_services.contact_add(actor=staff(alpha, "sales"), customer=customer, channel=Contact.Channel.CALL,
                                 summary="Outreach call")
        assert services.outreach_run() == 0
        assert services.outreach_run(now=timezone.now() + timedelta(days=15)) == 1


def test_todays_outreach_key_made_by_hand_is_kept(alpha):
    """The job's set-based insert and task_create share the key: a task under today's key, done
    already, is neither duplicated nor changed."""
    from crm.pipeline.services import task_create

    with tenant_context(alpha):
        tier("Gold", min_spend_12m=Decimal("10000"), outreach_days=14)
        customer = placed(alpha, "王芳")
        services.assignment_run()
        with timezone.override(alpha.time_zone):
            today = timezone.localdate()
        first = task_create(actor=None, title="Outreach by hand", owner=staff(alpha, "manager"), due_at=timezone.now(),
                            kind=Task.Kind.OUTREACH, customer=customer, key=f"outreach:{customer.pk}:{today.isoformat()}")
        Task.objects.filter(pk=first.pk).update(done_at=timezone.now())  # done: the job looks again
        assert services.outreach_run() == 0
        [kept] = outreach_tasks(customer)
        assert (kept.pk, kept.title, kept.owner) == (first.pk, "Outreach by hand", staff(alpha, "manager"))


def test_no_owner_or_an_inactive_owner_gets_no_task(alpha):
    with tenant_context(alpha):
        tier("Gold", min_spend_12m=Decimal("10000"), outreach_days=14)
        nobody = crm_services.customer_create(actor=None, via=ChangeLog.Via.API, name="无主")
        booking(nobody, "50000")
        services.assignment_run()
        assert services.outreach_run() == 0


def test_the_nightly_job_runs_outreach_in_its_own_agency_only(alpha, bravo):
    with tenant_context(bravo):
        tier("Gold", min_spend_12m=Decimal("10000"), outreach_days=14)
        bravo_customer = placed(bravo, "Bravo VIP")
        services.assignment_run()
    with tenant_context(alpha):
        tier("Gold", min_spend_12m=Decimal("10000"), outreach_days=14)
        alpha_customer = placed(alpha, "王芳")
        night = timezone.now().replace(hour=20, minute=0)  # 20:00 UTC is after 02:00 in Shanghai
        counts = services.assignment_nightly(now=night)
        assert counts["outreach"] == 1 and len(outreach_tasks(alpha_customer)) == 1
    with tenant_context(bravo):
        assert outreach_tasks(bravo_customer) == []
