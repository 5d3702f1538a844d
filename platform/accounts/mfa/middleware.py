"""Half-signed-in sessions reach only the two-step pages; signed-in ones are recorded.

After the password, a user with a device must pass the second step, and one who needs a device
(``services.second_factor_required``) but has none must enrol: until then every other page and the
session-authenticated API are refused (pages redirect, ``/api/`` answers 403). API calls with a
token are not affected here: the token endpoint itself asks for the code.
"""
from urllib.parse import quote

from django.contrib.auth import SESSION_KEY
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from caravan.api.errors import error_response

from . import services

# Open to a session that has not passed the second step yet (prefixes).
ALLOWED = ("/accounts/logout/", "/accounts/two-step/", "/i18n/", "/static/", "/favicon.ico")
# Only while the second step is due (not during enrolment): the passkey sign-in ceremony.
ALLOWED_VERIFY = ("/accounts/passkeys/authentication/", "/accounts/passkeys/jsi18n/")


class SecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        state = services.sign_in_state(request) if hasattr(request, "user") else "anonymous"
        request.second_step_due = state in ("verify", "enrol")  # base.html shows no menus then
        if request.second_step_due and not self._allowed(request.path, state):
            return self._refuse(request, state)
        response = self.get_response(request)
        # The view may have signed someone in or out, or passed the second step. Only a session's own
        # sign-in counts: DRF puts a token's user on the request too, and a token has no session.
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated and request.session.get(SESSION_KEY) is not None
                and services.sign_in_state(request) == "done"):
            services.session_seen(request, response)
        return response

    @staticmethod
    def _allowed(path: str, state: str) -> bool:
        return path.startswith(ALLOWED) or (state == "verify" and path.startswith(ALLOWED_VERIFY))

    @staticmethod
    def _refuse(request, state: str):
        if request.path.startswith("/api/"):
            return error_response("second_factor_required", _("Finish the two-step sign-in first."), 403)
        target = reverse("two_step" if state == "verify" else "two_step_setup")
        if request.method == "GET" and request.path != "/":
            target += "?next=" + quote(request.get_full_path(), safe="/")
        return redirect(target)
