"""Segment writes (R-CAMP-1): save (create or change), delete, and re-evaluate a saved segment.

A saved segment keeps its *definition*, never a list of customers: every use (its page, the API,
a campaign) runs ``query.customers_matching`` again, so a customer who newly matches is in it.
``last_count`` is only the count at the last evaluation, for lists.
"""
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models.deletion import ProtectedError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.roles import Cap

from .definition import validate
from .models import Segment
from .query import count_matching

NAME_MAX = 120
DESCRIPTION_MAX = 2000


def can_manage(user: User | None) -> bool:
    return user is None or user.can(Cap.CAMPAIGNS_MANAGE)


def _require(actor: User | None) -> None:
    if not can_manage(actor):
        raise PermissionDenied(_("You may not manage segments."))


def _clean(segment: Segment | None, name, description, definition) -> tuple[str, str, dict]:
    errors = {}
    name = (name or "").strip() if isinstance(name, str) or name is None else None
    if not name:
        errors["name"] = [_("Give the segment a name, e.g. Business-class flyers.")]
    elif len(name) > NAME_MAX:
        errors["name"] = [_("At most %(n)d characters.") % {"n": NAME_MAX}]
    elif Segment.objects.filter(name__iexact=name).exclude(pk=segment.pk if segment else None).exists():
        errors["name"] = [_("There is already a segment with this name.")]
    description = (description or "").strip() if isinstance(description, str) or description is None else None
    if description is None or len(description) > DESCRIPTION_MAX:
        errors["description"] = [_("At most %(n)d characters.") % {"n": DESCRIPTION_MAX}]
    try:
        cleaned = validate(definition)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        cleaned = None
    if errors:
        raise ValidationError(errors)
    return name, description, cleaned


@transaction.atomic
def segment_save(*, actor: User | None, segment: Segment | None = None, name: str, description: str = "",
                 definition: dict) -> Segment:
    """Create a segment (``segment=None``) or change one; the definition is validated and the
    segment evaluated once, so the list shows its size."""
    _require(actor)
    name, description, cleaned = _clean(segment, name, description, definition)
    if segment is None:
        segment = Segment(created_by=actor)
    else:
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
    segment.name, segment.description, segment.definition = name, description, cleaned
    try:
        with transaction.atomic():
            segment.save()
    except IntegrityError:  # the same name saved at the same moment by someone else
        raise ValidationError({"name": [_("There is already a segment with this name.")]}) from None
    segment_evaluate(segment=segment)
    return segment


@transaction.atomic
def segment_delete(*, actor: User | None, segment: Segment) -> None:
    """Delete a saved segment. Campaigns keep their own copy of the filters they were sent with."""
    _require(actor)
    try:
        Segment.objects.filter(pk=segment.pk).delete()
    except ProtectedError:
        raise ValidationError({"segment": [_("This segment is still used and cannot be deleted.")]}) from None


def segment_evaluate(*, segment: Segment) -> int:
    """Count the segment's customers now and remember the count (not the customers)."""
    count = count_matching(segment.definition)
    now = timezone.now()
    Segment.objects.filter(pk=segment.pk).update(last_count=count, last_counted_at=now)
    segment.last_count, segment.last_counted_at = count, now
    return count
