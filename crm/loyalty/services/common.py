"""Shared helpers of the care-automation services: who may do what, the agency's day, money, and
embedding a queryset's SQL (e.g. ``campaigns.consent.emailable``) in a set-based statement."""
import re
from datetime import date, datetime, time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.roles import Cap
from caravan import money
from caravan.tenancy import require_agency

TRIP_DONE = ("confirmed", "completed")  # the statuses of a trip the customer actually bought


def can_work(user: User) -> bool:
    """Work win-back cases, referrals and holiday suggestions."""
    return user.can(Cap.PIPELINE_WORK) or user.can(Cap.COMPLAINTS_HANDLE)


def can_manage_occasions(user: User) -> bool:
    """Change what customers are greeted for, the words, and the automation settings."""
    return user.can(Cap.CAMPAIGNS_MANAGE) or user.can(Cap.SETTINGS_MANAGE)


def can_see_care(user: User) -> bool:
    return can_work(user) or can_manage_occasions(user)


def agency_today(now: datetime | None = None) -> date:
    with timezone.override(require_agency().time_zone):
        return timezone.localdate(now or timezone.now())


def local_moment(day: date, at: time) -> datetime:
    """``at`` on ``day`` in the agency's time zone, as an aware datetime."""
    with timezone.override(require_agency().time_zone):
        return timezone.make_aware(datetime.combine(day, at))


def parse_money(value, field: str, errors: dict) -> Decimal | None:
    """An optional amount: empty → None; else zero or more (``caravan.money``), or an error for ``field``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return money.parse_money(value, field=field, allow_zero=True)
    except ValidationError as exc:
        errors.update(exc.message_dict)
        return None


_PLACEHOLDER = re.compile(r"(?<!%)%s")


def embedded(queryset: QuerySet, prefix: str) -> tuple[str, dict]:
    """The queryset's SQL with its positional parameters renamed ``%(<prefix>N)s``, so that it can
    sit inside a statement that uses named parameters. Returns (sql, params)."""
    sql, params = queryset.query.sql_with_params()
    names = iter(range(len(params)))
    sql = _PLACEHOLDER.sub(lambda _m: f"%({prefix}{next(names)})s", sql)
    return sql, {f"{prefix}{n}": value for n, value in enumerate(params)}
