"""Error reporting to Sentry: the agency attached as a tag, personal data scrubbed out.

``data_collection`` (successor of ``send_default_pii``) collects no user info, bodies or local
variables, and
:func:`scrub_event` removes e-mail addresses, phone numbers and document numbers from every
string in the event (messages, exception values, breadcrumbs, local variables) before it leaves.
"""
import re

import sentry_sdk

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# International or Chinese mobile/landline numbers: + or 0/1 led runs of 7+ digits with separators.
PHONE_RE = re.compile(r"(?<![\w])(?:\+|00)?\d[\d\s().-]{6,}\d(?![\w])")
# Passport / ID / visa numbers: a letter-digit mix of 6+ chars, or 15/18-char Chinese ID numbers.
DOCUMENT_RE = re.compile(r"\b(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{6,20}\b|\b\d{17}[\dXx]\b|\b\d{15}\b")
FILTERED = "[Filtered]"
_SENSITIVE_KEYS = re.compile(r"pass|secret|token|api_key|authorization|cookie|session|email|phone|mobile|passport|"
                             r"id_number|document|csrf", re.I)


# Record ids (export jobs, request ids) are not personal data; their digit runs look like phones.
UUID_RE = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


# A customer portal sign-in link's token (frontend.portal): a key to a customer's trips while it lives.
PORTAL_LINK_RE = re.compile(r"(/portal/link/)[^/?#\s]+")


def scrub_text(text: str) -> str:
    text = PORTAL_LINK_RE.sub(r"\1" + FILTERED, text)
    parts = UUID_RE.split(text)
    if len(parts) > 1:
        ids = UUID_RE.findall(text)
        return "".join(scrub_text(part) + (ids[i] if i < len(ids) else "") for i, part in enumerate(parts))
    text = EMAIL_RE.sub(FILTERED, text)
    text = DOCUMENT_RE.sub(FILTERED, text)
    return PHONE_RE.sub(FILTERED, text)


def _scrub(value, key: str = ""):
    if key and _SENSITIVE_KEYS.search(key):
        return FILTERED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def scrub_event(event, hint=None):
    """``before_send`` / ``before_send_transaction``: return the event with personal data removed."""
    event = dict(event)
    event.pop("user", None)
    request = event.get("request")
    if isinstance(request, dict):
        event["request"] = {k: v for k, v in request.items() if k in ("url", "method")}
        event["request"]["url"] = scrub_text(str(request.get("url", "")))
    for key in ("message", "logentry", "exception", "breadcrumbs", "extra", "contexts", "threads"):
        if key in event:
            event[key] = _scrub(event[key])
    return event


def scrub_breadcrumb(crumb, hint=None):
    return _scrub(crumb)


def init_sentry(*, dsn: str, environment: str, transport=None) -> bool:
    if not dsn:
        return False
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    options = dict(
        dsn=dsn,
        environment=environment,
        # No user info, cookies, bodies, query data or local variables; the scrubber is the backstop.
        data_collection={"user_info": False, "http_bodies": [], "database_query_data": False,
                         "stack_frame_variables": False},
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=0.0,
    )
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(**options)
    return True
