"""Passkeys belong to the host they were made on: each agency's ``<slug>.<PLATFORM_DOMAIN>``, or the
platform domain for operators. The relying party id is the request's host name and the only
origin accepted is that host with ``PLATFORM_SCHEME`` and ``PLATFORM_PORT``, so a passkey made at
alpha is refused by the browser and by the server at bravo (besides living in alpha's schema)."""
from django.conf import settings
from django_otp_webauthn.helpers import WebAuthnHelper

from caravan.tenancy import current_agency


def rp_id(request) -> str:
    return request.get_host().rsplit(":", 1)[0] if not request.get_host().endswith("]") else request.get_host()


def rp_name(request) -> str:
    agency = current_agency()
    return agency.name if agency else "Caravan"


def origin(request) -> str:
    port = settings.PLATFORM_PORT
    default = {"http": "80", "https": "443"}.get(settings.PLATFORM_SCHEME)
    suffix = f":{port}" if port and port != default else ""
    return f"{settings.PLATFORM_SCHEME}://{rp_id(request)}{suffix}"


class HostHelper(WebAuthnHelper):
    def get_allowed_origins(self) -> list[str]:
        return [origin(self.request)]
