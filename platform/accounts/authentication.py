"""DRF authentication by named, scoped API token (accounts.models.ApiToken).

``Authorization: Token <secret>`` (or ``Bearer <secret>``). The token is looked up in the active
schema only, so an agency's token means nothing on another agency's host (401). The scope check
happens here, at authentication, for every DRF view whatever its base class: the view's area comes
from ``accounts.scopes.area_of`` and a view without one refuses every token (403).
"""
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from . import scopes
from .tokens import token_authenticate

KEYWORDS = (b"token", b"bearer")


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_("Invalid token header."))
        try:
            secret = parts[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token header.")) from None
        token = token_authenticate(secret)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        view = (getattr(request, "parser_context", None) or {}).get("view")
        area = scopes.area_of(view) if view is not None else None
        if not scopes.allows(token.scopes, area, request.method):
            raise exceptions.PermissionDenied(
                _("This token's scopes do not allow this request (%(area)s, %(kind)s).")
                % {"area": area or "?", "kind": "read" if request.method in scopes.SAFE_METHODS else "write"})
        return token.user, token

    def authenticate_header(self, request):
        return "Token"


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <secret>` from POST auth/token/ or the profile page; scoped per area."}
