"""Sign-in, invitations, the user's own profile, and language choice."""
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from accounts.mfa import services as mfa_services
from accounts.roles import Cap
from accounts.services import user_set_language
from caravan.tenancy import current_agency
from tenants.models import Agency
from tenants.services import agency_update_settings

from .base import AgencyPage
from .signin_guard import LinkThrottleMixin, live_tokens


class SignInForm(AuthenticationForm):
    """Operators sign in only on the platform domain; staff only on their agency's host."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        on_platform = current_agency() is None
        if user.is_operator != on_platform:
            raise ValidationError(self.error_messages["invalid_login"], code="invalid_login",
                                  params={"username": self.username_field.verbose_name})


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        # The password is only the first step for someone with a device or who needs one (accounts.mfa).
        step = mfa_services.sign_in_state(self.request)
        if step in ("verify", "enrol"):
            response = redirect(f"{reverse('two_step' if step == 'verify' else 'two_step_setup')}?"
                                f"{urlencode({'next': self.get_success_url()})}")
        language = form.get_user().language
        if language:
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, language, samesite="Lax")
        return response

    def get_success_url(self):
        if current_agency() is None:
            return self.get_redirect_url() or reverse_lazy("console:agencies")
        return super().get_success_url()


class InvitationAcceptView(LinkThrottleMixin, auth_views.PasswordResetConfirmView):
    """Set a first password from an invitation link (Django's reset token: one use, expires)."""

    template_name = "registration/invitation_accept.html"
    success_url = reverse_lazy("login")
    post_reset_login = False

    def form_valid(self, form):
        messages.success(self.request, _("Your password is set. Welcome aboard: please sign in."))
        return super().form_valid(form)


class ProfileForm(forms.Form):
    language = forms.ChoiceField(label=gettext_lazy("Language"), choices=settings.LANGUAGES)


class ProfileView(AgencyPage, View):
    def get(self, request):
        form = ProfileForm(initial={"language": request.user.language or request.LANGUAGE_CODE})
        return render(request, "frontend/profile.html", {"form": form, "tokens": live_tokens(request.user)})

    def post(self, request):
        form = ProfileForm(request.POST)
        if form.is_valid():
            user_set_language(user=request.user, language=form.cleaned_data["language"])
            response = redirect("profile")
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, form.cleaned_data["language"], samesite="Lax")
            messages.success(request, _("Saved."))
            return response
        return render(request, "frontend/profile.html", {"form": form, "tokens": live_tokens(request.user)}, status=400)


class AgencySettingsForm(forms.ModelForm):
    class Meta:
        model = Agency
        fields = ["name", "default_region", "currency", "time_zone", "language", "require_two_factor"]


class AgencySettingsView(AgencyPage, View):
    required_cap = Cap.SETTINGS_MANAGE

    def get(self, request):
        return render(request, "frontend/settings.html", {"form": AgencySettingsForm(instance=current_agency())})

    def post(self, request):
        agency = current_agency()
        form = AgencySettingsForm(request.POST, instance=Agency.objects.get(pk=agency.pk))
        if form.is_valid():
            agency_update_settings(agency=agency, actor=request.user.email,
                                   **{name: form.cleaned_data[name] for name in form.Meta.fields})
            messages.success(request, _("Settings saved."))
            return redirect("agency_settings")
        return render(request, "frontend/settings.html", {"form": form}, status=400)
