"""A staff member's visit slots as an iCalendar feed (RFC 5545), for their phone's calendar.

The feed URL carries a signed token: its salt names the agency's schema (a token is worthless on
another agency's host) and it holds a digest of the user's password hash, so changing the password
revokes every feed link handed out before; a deactivated user's feed answers 404.
"""
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.models import User
from accounts.roles import Cap
from caravan import signing

from .models import VisitPlan
from .selectors import slot_tasks
from .services import KEY_PREFIX

PAST_DAYS = 30
FUTURE_DAYS = 60


def _digest(user: User) -> str:
    return salted_hmac("visits.ical", user.password).hexdigest()[:16]


def feed_token(user: User) -> str:
    return signing.dumps("visits.ical", {"u": user.pk, "p": _digest(user)}, compress=True)


def user_from_token(token: str) -> User | None:
    """The active colleague the token was made for, or None (bad, foreign or revoked token)."""
    try:
        data = signing.loads("visits.ical", token)
    except signing.BadSignature:
        return None
    user = User.objects.filter(pk=data.get("u"), is_active=True, is_operator=False).first()
    if user is None or data.get("p") != _digest(user) or not user.can(Cap.PIPELINE_WORK):
        return None
    return user


def _escape(text: str) -> str:
    return (text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\\n").replace("\n", "\\n"))


def _fold(line: str) -> str:
    """Lines longer than 75 octets are folded (CRLF + space), never inside a UTF-8 character."""
    out, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def feed(user: User, *, host: str) -> str:
    """The user's visit slots from 30 days ago to 60 days ahead."""
    start = timezone.now() - timedelta(days=PAST_DAYS)
    tasks = (slot_tasks().filter(owner=user, due_at__gte=start,
                                 due_at__lt=timezone.now() + timedelta(days=FUTURE_DAYS))
             .select_related("customer").order_by("due_at"))
    plans = {p.pk: p for p in VisitPlan.objects.filter(owner=user)}
    now = _stamp(timezone.now())
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Caravan//Key-account visits//EN", "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH", f"X-WR-CALNAME:{_escape(host)}"]
    for task in tasks:
        plan = plans.get(int(task.key[len(KEY_PREFIX):].split(":")[0]))
        minutes = plan.duration_minutes if plan else 60
        lines += ["BEGIN:VEVENT", f"UID:visit-{task.pk}@{host}", f"DTSTAMP:{now}",
                  f"DTSTART:{_stamp(task.due_at)}", f"DTEND:{_stamp(task.due_at + timedelta(minutes=minutes))}",
                  f"SUMMARY:{_escape(task.display_title)}", "STATUS:CONFIRMED"]
        if plan and plan.location:
            lines.append(f"LOCATION:{_escape(plan.location)}")
        if task.notes:
            lines.append(f"DESCRIPTION:{_escape(task.display_notes)}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
