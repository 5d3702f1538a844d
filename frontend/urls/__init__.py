"""Agency pages (agency hosts)."""
from django.contrib.auth import views as auth_views
from django.urls import include, path

from caravan.security import allow_stripe

from ..views import account, billing, dashboard, export, language, search, security, signin_guard, staff

urlpatterns = [
    path("", include("frontend.urls.customers")),
    path("", include("frontend.urls.customer_details")),
    path("", include("frontend.urls.imports")),
    path("", include("frontend.urls.pipeline")),
    path("", include("frontend.urls.trips")),
    path("", include("frontend.urls.care")),
    path("", include("frontend.urls.policies")),
    path("", include("frontend.urls.tiers")),
    path("", include("frontend.urls.visits")),
    path("", include("frontend.urls.campaigns")),
    path("", include("frontend.urls.loyalty")),
    path("", include("frontend.urls.segments")),
    path("", include("frontend.urls.value")),
    path("", include("frontend.urls.suppliers")),
    path("", include("frontend.urls.privacy")),
    path("", include("frontend.urls.retention")),
    path("", include("frontend.urls.destinations")),
    path("", include("frontend.urls.portal")),
    path("", include("frontend.urls.checkout")),
    path("", include("frontend.urls.portal_messages")),
    path("", include("frontend.urls.proposals")),
    path("", include("frontend.urls.document_files")),  # document scans (crm.documents)
    path("portal/", include("frontend.portal.urls")),
    path("", dashboard.DashboardView.as_view(), name="home"),
    path("search/", search.SearchView.as_view(), name="search"),
    path("staff/", staff.StaffListView.as_view(), name="staff_list"),
    path("staff/invite/", staff.StaffInviteView.as_view(), name="staff_invite"),
    path("staff/tokens/", signin_guard.AgencyTokensView.as_view(), name="agency_tokens"),
    path("staff/unlock/", signin_guard.UnlockView.as_view(), name="signin_unlock"),
    path("staff/<int:pk>/", staff.StaffEditView.as_view(), name="staff_edit"),
    path("staff/<int:pk>/security/", security.StaffSecurityView.as_view(), name="staff_security"),
    path("settings/", account.AgencySettingsView.as_view(), name="agency_settings"),
    path("settings/billing/", allow_stripe(billing.BillingView.as_view()), name="billing"),  # CSP: Stripe.js
    path("settings/export/", export.ExportView.as_view(), name="agency_export"),
    path("settings/export/<uuid:pk>/", export.ExportDetailView.as_view(), name="agency_export_detail"),
    path("settings/export/<uuid:pk>/download/", export.ExportDownloadView.as_view(), name="agency_export_download"),
    path("profile/", account.ProfileView.as_view(), name="profile"),
    path("profile/tokens/", signin_guard.TokensView.as_view(), name="tokens"),
    path("accounts/invitation/<uidb64>/<token>/", account.InvitationAcceptView.as_view(), name="invitation_accept"),
]

# Sign-in, sign-out and password reset: on agency hosts and on the platform domain alike.
auth_urlpatterns = [
    path("accounts/login/", account.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/reset/", signin_guard.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("accounts/password/reset/<uidb64>/<token>/", signin_guard.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("accounts/password/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("accounts/password/change/", auth_views.PasswordChangeView.as_view(success_url="/profile/"), name="password_change"),
    path("i18n/setlang/", language.switch_language, name="set_language"),
    # Two-step sign-in, passkeys, the security page (accounts.mfa; docs/two-step-sign-in.md).
    path("accounts/two-step/", security.TwoStepView.as_view(), name="two_step"),
    path("accounts/two-step/setup/", security.TwoStepSetupView.as_view(), name="two_step_setup"),
    path("accounts/passkeys/", include("django_otp_webauthn.urls", namespace="otp_webauthn")),
    path("accounts/security/", security.SecurityView.as_view(), name="security"),
]
