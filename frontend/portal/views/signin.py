"""Signing in to the portal: ask for a link, type its code, or open it; sign out; choose a language.

These pages come before the fence (nobody is signed in yet), so they are on ``frontend.public``'s list;
what decides is the single-use link or code (``crm.portal.services``), rate-limited per address and client.
"""
from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views import View

from caravan.clients import request_address
from caravan.forms import apply_errors
from caravan.tenancy import current_agency
from crm.customers.models import ChangeLog
from crm.customers.services import customer_update
from crm.portal import services

from .. import session as portal_session
from ..base import PortalPage, portal_language


class EmailForm(forms.Form):
    email = forms.EmailField(label=_("Your e-mail address"), max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}))


class CodeForm(forms.Form):
    code = forms.CharField(label=_("Six-digit code"), max_length=12,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                         "pattern": "[0-9 ]*"}))


def _client(request) -> str:
    return request_address(request)


def _safe_next(request, value: str) -> str:
    if value and value.startswith("/portal/") and url_has_allowed_host_and_scheme(
            value, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return value
    return reverse("portal:home")


class _PublicPortalView(View):
    """Sign-in pages: agency hosts only, in the visitor's chosen language."""

    template_name = ""

    def dispatch(self, request, *args, **kwargs):  # noqa: D102 — not a PortalPage: nobody is signed in yet
        if current_agency() is None or request.portal_session is None:
            raise Http404
        translation.activate(portal_language(request))
        request.LANGUAGE_CODE = translation.get_language()
        return super().dispatch(request, *args, **kwargs)

    def page(self, request, context: dict, status: int = 200):
        return render(request, self.template_name, {**context, "next": request.GET.get("next", "")}, status=status)


class SignInView(_PublicPortalView):
    template_name = "portal/sign_in.html"

    def get(self, request):
        return self.page(request, {"form": EmailForm()})

    def post(self, request):
        form = EmailForm(request.POST)
        if not form.is_valid():
            return self.page(request, {"form": form}, status=400)
        try:
            link = services.link_request(email=form.cleaned_data["email"], client=_client(request))
        except services.RateLimited as limited:
            form.add_error(None, _("Too many sign-in e-mails were asked for. Try again in %(minutes)d minutes.")
                           % {"minutes": max(1, limited.retry_after // 60)})
            response = self.page(request, {"form": form}, status=429)
            response["Retry-After"] = str(limited.retry_after)
            return response
        request.portal_session[portal_session.PENDING] = link.pk if link else 0
        request.portal_session["portal_pending_email"] = form.cleaned_data["email"]
        request.portal_session["portal_next"] = _safe_next(request, request.POST.get("next", ""))
        return redirect("portal:check")


class CheckView(_PublicPortalView):
    """“Check your e-mail”, with the code form for mail clients that open links before their reader."""

    template_name = "portal/check.html"

    def get(self, request):
        if "portal_pending_email" not in request.portal_session:
            return redirect("portal:sign_in")
        return self.page(request, {"form": CodeForm(), "email": request.portal_session["portal_pending_email"]})

    def post(self, request):
        form = CodeForm(request.POST)
        email = request.portal_session.get("portal_pending_email")
        if email is None:
            return redirect("portal:sign_in")
        if form.is_valid():
            try:
                link = services.code_use(link_id=request.portal_session.get(portal_session.PENDING) or 0,
                                         code=form.cleaned_data["code"], client=_client(request))
            except ValidationError as exc:
                apply_errors(form, exc)
            except services.LinkInvalid:
                form.add_error("code", _("This code has expired or was used up. Ask for a new e-mail."))
            else:
                next_path = request.portal_session.get("portal_next") or ""
                portal_session.sign_in(request, link)
                return redirect(_safe_next(request, link.next_path or next_path))
        return self.page(request, {"form": form, "email": email}, status=400)


class LinkView(_PublicPortalView):
    """The link from the e-mail. Opening it spends nothing (mail scanners open links); the button does."""

    template_name = "portal/link.html"

    def get(self, request, token):
        try:
            link = services.link_peek(token)
        except services.LinkInvalid:
            return self.page(request, {"invalid": True}, status=410)
        return self.page(request, {"link": link})

    def post(self, request, token):
        try:
            link = services.link_use(token=token, client=_client(request))
        except services.LinkInvalid:
            return self.page(request, {"invalid": True}, status=410)
        portal_session.sign_in(request, link)
        return redirect(_safe_next(request, link.next_path))


class SignOutView(_PublicPortalView):
    def post(self, request):
        portal_session.sign_out(request)
        return redirect("portal:sign_in")


class LanguageView(_PublicPortalView):
    """The portal's language switch: kept in the portal session, and on the card of a signed-in customer
    (through the customers service, logged as the customer's own change)."""

    def post(self, request):
        language = request.POST.get("language", "")
        if language not in dict(settings.LANGUAGES):
            return HttpResponse(status=400)
        request.portal_session[portal_session.LANGUAGE] = language
        customer = PortalPage._signed_in(request)
        if customer is not None and customer.language != language:
            customer_update(actor=None, via=ChangeLog.Via.PORTAL, customer=customer, language=language)
        return redirect(_safe_next(request, request.POST.get("next", "")))


class LogoView(View):
    """The agency's portal logo (shown on the sign-in page too, so before any sign-in; it is public)."""

    def get(self, request):
        if current_agency() is None:
            raise Http404
        row = services.portal_settings()
        if not row.logo:
            raise Http404
        response = HttpResponse(bytes(row.logo), content_type=row.logo_type)
        response["Cache-Control"] = "public, max-age=300"
        response["X-Content-Type-Options"] = "nosniff"
        return response
