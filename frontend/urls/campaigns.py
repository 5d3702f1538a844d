"""Agency pages for crm.campaigns (see frontend/views/campaigns.py)."""
from django.urls import path

from ..views import campaigns

urlpatterns = [
    path("campaigns/", campaigns.CampaignListView.as_view(), name="campaign_list"),
    path("campaigns/new/", campaigns.CampaignFormView.as_view(), name="campaign_create"),
    path("campaigns/<int:pk>/", campaigns.CampaignDetailView.as_view(), name="campaign_detail"),
    path("campaigns/<int:pk>/edit/", campaigns.CampaignFormView.as_view(), name="campaign_edit"),
    path("campaigns/<int:pk>/results/", campaigns.CampaignResultsView.as_view(), name="campaign_results"),
    path("campaigns/<int:pk>/results.csv", campaigns.CampaignResultsCsvView.as_view(), name="campaign_results_csv"),
    path("campaigns/<int:pk>/<str:action>/", campaigns.CampaignActionView.as_view(), name="campaign_action"),
    path("campaigns/templates/", campaigns.TemplateListView.as_view(), name="campaign_templates"),
    path("campaigns/templates/new/", campaigns.TemplateFormView.as_view(), name="campaign_template_create"),
    path("campaigns/templates/<int:pk>/", campaigns.TemplateFormView.as_view(), name="campaign_template_edit"),
    path("customers/<int:pk>/consent/", campaigns.ConsentRecordView.as_view(), name="customer_consent"),
    # Public: the links in a campaign e-mail, signed per recipient and agency (no sign-in).
    path("c/u/<str:token>/", campaigns.UnsubscribeView.as_view(), name="campaign_unsubscribe"),
    path("c/o/<str:token>/", campaigns.open_pixel, name="campaign_open"),
    path("c/l/<str:token>/", campaigns.click, name="campaign_click"),
]
