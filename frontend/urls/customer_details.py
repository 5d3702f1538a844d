"""Customer 360, part 2: the card's sections (loaded by htmx), merge and handover pages."""
from django.urls import path

from ..views import customer_details as views

urlpatterns = [
    path("customers/handover/", views.CustomerHandoverView.as_view(), name="customer_handover"),
    path("customers/<int:pk>/documents/", views.DocumentsSection.as_view(), name="customer_documents"),
    path("customers/<int:pk>/documents/add/", views.DocumentAddView.as_view(), name="customer_document_add"),
    path("documents/<int:pk>/reveal/", views.DocumentRevealView.as_view(), name="document_reveal"),
    path("customers/<int:pk>/profile/", views.ProfileSection.as_view(), name="customer_profile_sections"),
    path("customers/<int:pk>/profile/preferences/", views.PreferencesEditView.as_view(), name="customer_preferences_edit"),
    path("customers/<int:pk>/profile/loyalty/", views.LoyaltyAddView.as_view(), name="customer_loyalty_add"),
    path("customers/<int:pk>/profile/family-dates/", views.FamilyDateAddView.as_view(), name="customer_family_date_add"),
    path("customers/<int:pk>/company/", views.CompanySection.as_view(), name="customer_company_links"),
    path("customers/<int:pk>/company/people/", views.PersonSearchView.as_view(), name="customer_person_search"),
    path("customers/<int:pk>/company/link/", views.EmploymentAddView.as_view(), name="customer_employment_add"),
    path("customers/<int:pk>/merge/", views.CustomerMergeView.as_view(), name="customer_merge"),
]
