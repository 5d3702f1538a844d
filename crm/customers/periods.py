"""Report periods in the agency's time zone (the active one in a request or an agency task)."""
from datetime import date, datetime, time, timedelta

from django.utils import timezone


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The days ``start`` … ``end`` (included) as aware datetimes: [start 00:00, the day after end 00:00)."""
    return (timezone.make_aware(datetime.combine(start, time.min)),
            timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min)))


def trailing_days(days: int) -> tuple[date, date]:
    """The last ``days`` days, today included."""
    today = timezone.localdate()
    return today - timedelta(days=days - 1), today
