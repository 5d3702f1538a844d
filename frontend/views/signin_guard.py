"""Sign-in protection and API tokens on pages: the throttled password reset and one-time links, the
user's own tokens, the agency's tokens and sign-in lockouts for admins. Rules live in
``accounts.tokens`` and ``accounts.signin``."""
from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext_lazy
from django.views import View

from accounts import scopes as scope_rules
from accounts import signin, tokens
from accounts.models import ApiToken
from accounts.roles import Cap
from caravan.clients import rate_hit, request_address
from caravan.forms import errors_onto
from caravan.texts import lazy_format

from .base import AgencyPage

# Password reset requests: per client address and per e-mail; one-time links: per address.
RESET_PER_ADDRESS, RESET_PER_EMAIL, LINKS_PER_ADDRESS, WINDOW = 5, 3, 20, 15 * 60


def throttled(request, seconds: int, *, title: str):
    minutes = max(1, (seconds + 59) // 60)
    response = render(request, "registration/throttled.html", {"title": title, "minutes": minutes}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset request, limited per client address and per e-mail (no mail bombing, no probing)."""

    def post(self, request, *args, **kwargs):
        address = request_address(request)
        email = str(request.POST.get("email", "")).strip().lower()[:254]
        wait = rate_hit(f"reset:address:{address}", limit=RESET_PER_ADDRESS, window=WINDOW)
        if not wait and email:
            wait = rate_hit(f"reset:email:{email}", limit=RESET_PER_EMAIL, window=WINDOW)
        if wait:
            return throttled(request, wait, title=_("Reset your password"))
        return super().post(request, *args, **kwargs)


class LinkThrottleMixin:
    """One-time links (invitation, password reset): every visit counts per client address, so their
    tokens cannot be guessed by trying many."""

    def dispatch(self, request, *args, **kwargs):
        wait = rate_hit(f"links:address:{request_address(request)}", limit=LINKS_PER_ADDRESS, window=WINDOW)
        if wait:
            return throttled(request, wait, title=_("Too many attempts"))
        return super().dispatch(request, *args, **kwargs)


class PasswordResetConfirmView(LinkThrottleMixin, auth_views.PasswordResetConfirmView):
    pass


# --- API tokens ---------------------------------------------------------------------------------------

class TokenForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100,
                           help_text=gettext_lazy("What will use it, e.g. “Website booking sync”."))
    scopes = forms.MultipleChoiceField(label=gettext_lazy("May use"), widget=forms.CheckboxSelectMultiple,
                                       help_text=gettext_lazy("Write includes read. Only what your role can use is offered."))
    days = forms.TypedChoiceField(label=gettext_lazy("Expires after"), coerce=int, initial=90,
                                  choices=[(d, lazy_format(ngettext_lazy("%(days)s day", "%(days)s days", d), days=d))
                                           for d in tokens.EXPIRY_CHOICES])

    def __init__(self, *args, role: str, **kwargs):
        super().__init__(*args, **kwargs)
        useful = set(scope_rules.role_scopes(role))
        self.fields["scopes"].choices = [(v, label) for v, label in scope_rules.scope_choices() if v in useful]


def posted_pk(request) -> int:
    """The ``token`` id a form posted (0, found nowhere, for anything that is not a number)."""
    value = request.POST.get("token", "")
    return int(value) if value.isdigit() and len(value) < 19 else 0


def live_tokens(user) -> int:
    """How many unrevoked tokens ``user`` holds (the profile page's summary)."""
    return tokens.tokens_visible_to(user).filter(revoked_at__isnull=True).count()


def _scope_labels(token) -> list[str]:
    labels = dict(scope_rules.scope_choices())
    return [labels.get(s, s) for s in token.scopes]


def _rows(queryset):
    rows = list(queryset)
    for token in rows:
        token.scope_labels = _scope_labels(token)
    return rows


class TokensView(AgencyPage, View):
    """The user's own API tokens: create (secret shown once), see when each was last used, revoke."""

    def _page(self, request, form, *, secret=None, status=200):
        mine = _rows(tokens.tokens_visible_to(request.user).filter(revoked_at__isnull=True))
        return render(request, "frontend/tokens/mine.html", {"form": form, "tokens": mine, "secret": secret,
                                                              "can_manage": request.user.can(Cap.STAFF_MANAGE)},
                      status=status)

    def get(self, request):
        return self._page(request, TokenForm(role=request.user.role))

    def post(self, request):
        if request.POST.get("action") == "revoke":
            token = get_object_or_404(ApiToken, pk=posted_pk(request), user=request.user)
            tokens.token_revoke(actor=request.user, token=token)
            messages.success(request, _("Token “%(name)s” revoked.") % {"name": token.name})
            return redirect("tokens")
        form = TokenForm(request.POST, role=request.user.role)
        if form.is_valid():
            with errors_onto(form):
                token, secret = tokens.token_create(user=request.user, created_by=request.user, **form.cleaned_data)
                messages.success(request, _("Token “%(name)s” created.") % {"name": token.name})
                return self._page(request, TokenForm(role=request.user.role), secret=secret, status=201)
        return self._page(request, form, status=400)


class AgencyTokensView(AgencyPage, View):
    """Every API token of the agency, for admins: who holds it, what it may do, when last used; revoke."""

    required_cap = Cap.STAFF_MANAGE

    def get(self, request):
        everyone = _rows(tokens.tokens_visible_to(request.user, everyone=True).filter(revoked_at__isnull=True)
                         .order_by("user__full_name", "-created_at"))
        return render(request, "frontend/tokens/agency.html", {"tokens": everyone})

    def post(self, request):
        token = get_object_or_404(ApiToken, pk=posted_pk(request))
        tokens.token_revoke(actor=request.user, token=token)
        messages.success(request, _("Token “%(name)s” of %(person)s revoked.") % {"name": token.name,
                                                                                  "person": token.user})
        return redirect("agency_tokens")


class UnlockView(AgencyPage, View):
    """Admins lift a sign-in lockout of an account or an address (listed on the Staff page)."""

    required_cap = Cap.STAFF_MANAGE

    def post(self, request):
        kind, value = request.POST.get("kind", ""), request.POST.get("value", "")
        if kind in ("account", "address") and value:
            signin.signin_unlock(kind=kind, value=value)
            messages.success(request, _("Unlocked: %(value)s can sign in again.") % {"value": value})
        return redirect("staff_list")
