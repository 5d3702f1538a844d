"""Sentry: the agency is attached as a tag; e-mails, phones and document numbers never leave."""
import pytest
import sentry_sdk
from django.test import RequestFactory
from django_tenants.utils import tenant_context
from sentry_sdk.transport import Transport

from caravan.observability import init_sentry, scrub_text
from caravan.tenancy.middleware import AgencyContextMiddleware

pytestmark = pytest.mark.django_db

SECRETS = ("wang.fang@example.com", "E12345678", "13912345678")


@pytest.mark.parametrize("text", [
    "Customer li.wei@example.cn complained",
    "call +86 138 0013 8000 now",
    "phone 13800138000",
    "passport E12345678 expired",
    "ID 11010519491231002X on file",
])
def test_scrubber_removes_personal_data(text):
    scrubbed = scrub_text(text)
    assert "[Filtered]" in scrubbed
    for secret in ("li.wei@example.cn", "138 0013 8000", "13800138000", "E12345678", "11010519491231002X"):
        assert secret not in scrubbed


def test_scrubber_keeps_ordinary_text():
    assert scrub_text("Order 42 for 3 travellers failed") == "Order 42 for 3 travellers failed"


def test_scrubber_keeps_record_ids_but_not_what_surrounds_them():
    """Export and request ids are UUIDs, not personal data: log lines naming them stay readable."""
    line = "Export 12345678-1234-4123-8456-123456789012 downloaded by li@example.com (+86 138 0013 8000)"
    assert scrub_text(line) == "Export 12345678-1234-4123-8456-123456789012 downloaded by [Filtered] ([Filtered])"


class CapturingTransport(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.events = []

    def capture_envelope(self, envelope):
        self.events.extend(item.payload.json for item in envelope.items if item.type == "event")


@pytest.fixture
def sentry_events():
    transport = CapturingTransport()
    init_sentry(dsn="https://public@sentry.invalid/1", environment="test", transport=transport)
    yield transport.events
    sentry_sdk.init()  # back to a disabled client


def _fail_while_serving(request):
    try:
        raise ValueError(f"Could not book for {SECRETS[0]}, passport {SECRETS[1]}, tel {SECRETS[2]}")
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.capture_message(f"retrying booking for {SECRETS[0]}")
    return None


@pytest.mark.parametrize("slug", ["alpha", "bravo"])
def test_errors_in_a_request_carry_that_agency_and_no_personal_data(agencies, sentry_events, slug):
    request = RequestFactory().get("/", HTTP_HOST=f"{slug}.localhost")
    with sentry_sdk.isolation_scope(), tenant_context(agencies[slug]):
        AgencyContextMiddleware(_fail_while_serving)(request)
    sentry_sdk.flush()
    assert len(sentry_events) == 2
    for event in sentry_events:
        assert event["tags"]["agency"] == slug
        assert "user" not in event
        for secret in SECRETS:
            assert secret not in str(event)


def test_platform_errors_are_tagged_platform(sentry_events):
    with sentry_sdk.isolation_scope():
        AgencyContextMiddleware(_fail_while_serving)(RequestFactory().get("/"))
    sentry_sdk.flush()
    assert {e["tags"]["agency"] for e in sentry_events} == {"platform"}
