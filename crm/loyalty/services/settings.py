"""The agency's care-automation settings."""
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _

from accounts.models import User
from tenants.jobs import services as agency_jobs

from ..models import LoyaltySettings
from .common import can_manage_occasions

BOUNDS = {"greeting_hour": (0, 23), "suggestion_days_before": (1, 180), "dormant_days": (30, 3650),
          "dormant_min_trips": (1, 100)}


def _messages() -> dict:
    return {"greeting_hour": _("An hour from 0 to 23."), "suggestion_days_before": _("From 1 to 180 days."),
            "dormant_days": _("From 30 to 3,650 days."), "dormant_min_trips": _("From 1 to 100 trips.")}


def settings_update(*, actor: User, **fields) -> LoyaltySettings:
    if not can_manage_occasions(actor):
        raise PermissionDenied
    allowed = set(BOUNDS) | {"win_back_declining"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationError({name: [_("This field cannot be changed here.")] for name in sorted(unknown)})
    row = LoyaltySettings.load()
    errors, messages = {}, _messages()
    for name, (low, high) in BOUNDS.items():
        if name not in fields:
            continue
        value = fields[name]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors[name] = [messages[name]]
        else:
            setattr(row, name, value)
    if "win_back_declining" in fields:
        row.win_back_declining = bool(fields["win_back_declining"])
    if errors:
        raise ValidationError(errors)
    row.save()
    if "greeting_hour" in fields:  # the daily run's time moved: look again now
        agency_jobs.due("loyalty.greetings")
    return row
