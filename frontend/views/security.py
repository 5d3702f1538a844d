"""Two-step sign-in pages (on agency hosts and the platform domain alike), the security page
(devices and sessions), and an admin's reset of a staff member's second factor. The rules are in
``accounts.mfa.services``."""
import io
import re

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django_otp.plugins.otp_static.models import StaticDevice

from accounts import signin
from accounts.mfa import services
from accounts.models import User
from accounts.roles import Cap
from caravan.forms import errors_onto
from caravan.tenancy import current_agency

from .base import AgencyPage


class CodeForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=32,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True,
                                                         "spellcheck": "false"}))


def _next_url(request, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                                  require_https=request.is_secure()):
        return target
    return default


def qr_svg(text: str) -> str:
    """An inline <svg> QR code (no image URL, no script)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out)
    svg = out.getvalue().decode()
    return mark_safe(svg[svg.index("<svg"):])  # our own markup; the XML declaration dropped


class TwoStepView(LoginRequiredMixin, View):
    """The second step of signing in: a code from the app, a recovery code, or a passkey."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            state = services.sign_in_state(request)
            if state == "enrol":
                return redirect("two_step_setup")
            if state == "done":
                return redirect(_next_url(request))
        return super().dispatch(request, *args, **kwargs)

    def _page(self, request, form, status=200):
        return render(request, "registration/two_step.html", {
            "form": form, "next": _next_url(request), "has_passkeys": services.passkeys(request.user).exists(),
            "has_totp": services.confirmed_totp(request.user) is not None}, status=status)

    def get(self, request):
        return self._page(request, CodeForm())

    def post(self, request):
        email = request.user.email
        if signin.is_locked(request, email):
            return self._locked(request, email)
        form = CodeForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                device = services.verify_request(request=request, code=form.cleaned_data["code"])
                if isinstance(device, StaticDevice):
                    messages.warning(request, _("Recovery code used. %(left)s left: make new ones on the security "
                                                "page.") % {"left": services.recovery_codes_left(request.user)})
                return redirect(_next_url(request))
            # Refused. A wrong code counts like a wrong password (django-axes): codes cannot be guessed past it.
            if signin.record_failure(request, email):
                return self._locked(request, email)
        return self._page(request, form, status=400)

    @staticmethod
    def _locked(request, email):
        """Locked out: the half-signed-in session ends, and the sign-in page says for how long."""
        logout(request)
        return signin.lockout_response(request, credentials={"username": email})


class TwoStepSetupView(LoginRequiredMixin, View):
    """Set up an authenticator app: QR code and key, confirmed with a first code; then the recovery
    codes, shown once. Reached by someone who must enrol, or from the security page."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            state = services.sign_in_state(request)
            if state == "verify":
                return redirect("two_step")
            if state == "done" and services.confirmed_totp(request.user) is not None:
                return redirect("security")
        return super().dispatch(request, *args, **kwargs)

    def _page(self, request, form, status=200):
        device = services.totp_pending(user=request.user)
        agency = current_agency()
        issuer = f"Caravan {agency.name}" if agency else "Caravan"
        return render(request, "registration/two_step_setup.html", {
            "form": form, "qr": qr_svg(services.totp_uri(device, issuer=issuer)),
            "key": " ".join(re.findall(".{1,4}", services.manual_key(device))), "next": _next_url(request),
            "required": services.second_factor_required(request.user)}, status=status)

    def get(self, request):
        return self._page(request, CodeForm())

    def post(self, request):
        form = CodeForm(request.POST)
        if form.is_valid():
            with errors_onto(form):
                codes = services.totp_confirm(request=request, device=services.totp_pending(user=request.user),
                                              code=form.cleaned_data["code"])
                return _recovery_codes_page(request, codes)
        return self._page(request, form, status=400)


def _recovery_codes_page(request, codes):
    return render(request, "registration/recovery_codes.html", {
        "codes": codes, "next": _next_url(request, default=reverse("security")), "codes_text": "\n".join(codes)})


class SecurityView(LoginRequiredMixin, View):
    """Your devices and sessions: add or remove passkeys, new recovery codes, turn the app off, sign
    sessions out. Operators (platform domain) and staff (their agency's host) alike."""

    def get(self, request):
        return self._page(request)

    def _page(self, request, code_form=None, status=200):
        user = request.user
        return render(request, "frontend/security.html", {
            "totp": services.confirmed_totp(user), "passkeys": services.passkeys(user),
            "codes_left": services.recovery_codes_left(user), "code_form": code_form or CodeForm(),
            "sessions": services.sessions_for(user=user), "current_key": request.session.session_key,
            "required": services.second_factor_required(user), "verified": user.is_verified()}, status=status)

    def post(self, request):
        user = request.user
        action = request.POST.get("action")
        if action == "signout":
            try:
                services.session_end(user=user, record_id=int(request.POST.get("session") or 0))
            except (ValueError, ValidationError):
                messages.error(request, _("That session has already ended."))
            else:
                messages.success(request, _("That session is signed out."))
        elif action == "signout_others":
            count = services.sessions_end_others(user=user, keep=request.session.session_key)
            messages.success(request, _("Signed out everywhere else (%(count)s sessions).") % {"count": count})
        elif action == "passkey_remove":
            try:
                services.passkey_remove(user=user, pk=int(request.POST.get("passkey") or 0))
            except (ValueError, ValidationError):
                messages.error(request, _("No such passkey."))
            else:
                messages.success(request, _("Passkey removed."))
        elif action == "recovery_codes":
            if not (services.confirmed_totp(user) or services.passkeys(user).exists()):
                messages.error(request, _("Set up an authenticator app or a passkey first."))
            else:
                return _recovery_codes_page(request, services.recovery_codes_make(user=user))
        elif action == "totp_disable":
            form = CodeForm(request.POST)
            if form.is_valid():
                with errors_onto(form):
                    services.totp_disable(user=user, code=form.cleaned_data["code"])
                    messages.success(request, _("The authenticator app is turned off."))
                    return redirect("security")
            return self._page(request, code_form=form, status=400)
        return redirect("security")


class StaffSecurityView(AgencyPage, View):
    """An admin signs a staff member out everywhere, or resets their second factor (lost phone)."""

    required_cap = Cap.STAFF_MANAGE

    def post(self, request, pk):
        member = get_object_or_404(User, pk=pk, is_operator=False)
        action = request.POST.get("action")
        if action == "reset":
            try:
                services.second_factor_reset(actor=request.user, user=member)
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.success(request, _("Two-step sign-in reset: %(name)s sets it up again at the next sign-in.")
                                 % {"name": member})
        elif action == "signout":
            services.sessions_end_all(user=member)
            messages.success(request, _("%(name)s is signed out everywhere.") % {"name": member})
        return redirect("staff_edit", pk=member.pk)
