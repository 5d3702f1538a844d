"""E-mail to several staff members at once, each in their own language, over one connection."""
from contextlib import nullcontext

from django.conf import settings
from django.core.mail import get_connection, send_mail
from django.template.loader import render_to_string
from django.utils import timezone, translation


def mail_each(recipients, *, template: str, context: dict, agency) -> int:
    """Render ``<template>_subject.txt`` / ``<template>.txt`` for each recipient (as ``manager`` in the
    context, in their language, else the agency's, and in the agency's time zone; ``agency`` is None for platform mail to operators) and send them all on one SMTP connection.
    Rendering happens before the first message is sent, so a template error sends nothing. An SMTP
    error propagates: the callers release their claims so that the next run sends again."""
    messages = []
    for person in recipients:
        # In their language and the agency's time zone: dates and money go through caravan.formatting.
        with translation.override(person.language or (agency.language if agency else settings.LANGUAGE_CODE)), \
                (timezone.override(agency.time_zone) if agency else nullcontext()):
            personal = {**context, "manager": person, "agency": agency}
            messages.append((render_to_string(f"{template}_subject.txt", personal).strip(),
                             render_to_string(f"{template}.txt", personal), person.email))
    if messages:
        with get_connection() as connection:
            for subject, body, address in messages:
                send_mail(subject, body, None, [address], connection=connection)
    return len(messages)
