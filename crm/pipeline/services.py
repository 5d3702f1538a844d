"""Pipeline writes: opportunities and their stages, assignment, follow-up tasks (R-SALE-1, 2, 6).

Every path — pages, API, the website webhook, the enquiry form, trips and care jobs — comes
through here. Moves between stages are checked against :data:`ALLOWED`, defined on stage *kinds*
so that an agency's own stages can never open an illegal path.
"""
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User

from .models import Opportunity, Stage, StageChange, Task

K = Stage.Kind
# from kind -> kinds it may move to. Won is final: the trip carries on from there.
ALLOWED: dict[str, set[str]] = {
    K.OPEN: {K.OPEN, K.DEPOSIT, K.WON, K.LOST},  # open → won: corporate accounts on credit pay later
    K.DEPOSIT: {K.WON, K.LOST},
    K.WON: set(),
    K.LOST: {K.OPEN},  # reopen
}


class IllegalTransition(ValidationError):
    """A move the workflow does not allow, e.g. lost → won. Shown as a field error on ``field``."""

    def __init__(self, message: str, field: str = "stage"):
        super().__init__({field: [message]}, code="illegal_transition")


def stage_of(kind: str) -> Stage:
    """The one deposit / won / lost stage."""
    return Stage.objects.get(kind=kind)


def first_stage() -> Stage:
    return Stage.objects.filter(kind=K.OPEN, is_active=True).order_by("position", "id").first()


def check_move(opportunity: Opportunity, to: Stage) -> None:
    current = opportunity.stage
    if to.pk == current.pk:
        raise IllegalTransition(_("The opportunity is already at “%(stage)s”.") % {"stage": current})
    if not to.is_active:
        raise IllegalTransition(_("The stage “%(stage)s” is no longer in use.") % {"stage": to})
    if to.kind not in ALLOWED[current.kind]:
        raise IllegalTransition(_("An opportunity cannot move from “%(from)s” to “%(to)s”.") % {"from": current, "to": to})


@transaction.atomic
def opportunity_move(*, actor: User | None, opportunity: Opportunity, to: Stage, lost_reason: str = "",
                     lost_note: str = "") -> Opportunity:
    """Move to another stage, if the workflow allows it. Lost needs a reason."""
    opportunity = Opportunity.objects.select_for_update().select_related("stage").get(pk=opportunity.pk)
    check_move(opportunity, to)
    if to.kind == K.LOST and lost_reason not in Opportunity.LostReason.values:
        raise ValidationError({"lost_reason": [_("Say why the opportunity was lost.")]})
    now = timezone.now()
    StageChange.objects.create(opportunity=opportunity, from_stage=opportunity.stage, to_stage=to, actor=actor, at=now)
    opportunity.stage = to
    opportunity.stage_changed_at = now
    opportunity.closed_at = now if to.is_closed else None
    if to.kind == K.LOST:
        opportunity.lost_reason, opportunity.lost_note = lost_reason, (lost_note or "").strip()
    elif to.kind == K.OPEN:
        opportunity.lost_reason, opportunity.lost_note = "", ""
    opportunity.save(update_fields=["stage", "stage_changed_at", "closed_at", "lost_reason", "lost_note"])
    # The trip follows the opportunity: won confirms the quote as the order, lost cancels the quote.
    from crm.trips import services as trips

    if to.kind == K.WON:
        trips.trip_for_won_opportunity(actor=actor, opportunity=opportunity)
    elif to.kind == K.LOST:
        trips.quote_cancel_for_lost_opportunity(actor=actor, opportunity=opportunity)
    return opportunity


def task_create(*, actor: User | None, title: str, owner: User | None, due_at: datetime, kind: str = Task.Kind.FOLLOW_UP,
                customer=None, opportunity=None, trip=None, notes: str = "", remind_at: datetime | None = None,
                key: str | None = None) -> Task:
    """Create a task. With ``key``, a second call with the same key returns the first task unchanged,
    so jobs that run twice make each task once."""
    errors = {}
    if not (title or "").strip():
        errors["title"] = [_("Say what needs doing.")]
    if due_at is None:
        errors["due_at"] = [_("Give a due date.")]
    if remind_at and due_at and remind_at > due_at:
        errors["remind_at"] = [_("The reminder must come before the due date.")]
    if kind not in Task.Kind.values:
        errors["kind"] = [_("Choose a kind of task.")]
    if errors:
        raise ValidationError(errors)
    fields = dict(title=title.strip(), kind=kind, owner=owner, due_at=due_at, remind_at=remind_at, customer=customer,
                  opportunity=opportunity, trip=trip, notes=(notes or "").strip(), created_by=actor)
    if key is None:
        return Task.objects.create(**fields)
    task, _created = Task.objects.get_or_create(key=key, defaults=fields)
    return task
