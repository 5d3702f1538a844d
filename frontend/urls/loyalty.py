"""Agency pages for crm.loyalty (see frontend/views/loyalty.py)."""
from django.urls import path

from ..views import loyalty

urlpatterns = [
    path("care/", loyalty.CareHomeView.as_view(), name="care_home"),
    path("care/occasions/", loyalty.OccasionListView.as_view(), name="care_occasions"),
    path("care/occasions/new/", loyalty.OccasionFormView.as_view(), name="care_occasion_create"),
    path("care/occasions/<int:pk>/", loyalty.OccasionFormView.as_view(), name="care_occasion_edit"),
    path("care/greetings/", loyalty.GreetingLogView.as_view(), name="care_greetings"),
    path("care/suggestions/", loyalty.SuggestionListView.as_view(), name="care_suggestions"),
    path("care/suggestions/<int:pk>/<str:verb>/", loyalty.SuggestionActionView.as_view(), name="care_suggestion_action"),
    path("care/win-back/", loyalty.WinBackListView.as_view(), name="care_win_backs"),
    path("care/win-back/<int:pk>/", loyalty.WinBackDetailView.as_view(), name="care_win_back"),
    path("care/win-back/<int:pk>/<str:verb>/", loyalty.WinBackDetailView.as_view(), name="care_win_back_action"),
    path("care/referrals/", loyalty.ReferralListView.as_view(), name="care_referrals"),
    path("care/referrals/new/", loyalty.ReferralCreateView.as_view(), name="care_referral_create"),
    path("care/referrals/<int:pk>/reward/", loyalty.ReferralRewardView.as_view(), name="care_referral_reward"),
    path("care/customers/", loyalty.CustomerChoicesView.as_view(), name="care_customer_search"),
    path("care/settings/", loyalty.CareSettingsView.as_view(), name="care_settings"),
    # Public: the unsubscribe link at the foot of a greeting e-mail (signed, no sign-in).
    path("care/stop/<str:token>/", loyalty.UnsubscribeView.as_view(), name="care_unsubscribe"),
]
