"""Staff roles and what each may do (R-PLAT-3, least privilege).

One table answers every "may this role…?" question, in pages, the API and tasks alike. Later
features add capabilities here rather than testing role names in views.
"""
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    ADMIN = "admin", _("Agency admin")
    MANAGER = "manager", _("Manager")
    SALES = "sales", _("Sales")
    CALL_CENTER = "call_center", _("Call center")
    SERVICE = "service", _("Service")
    FINANCE = "finance", _("Finance")


class Cap(models.TextChoices):
    """Capabilities. Values are stable strings used in code and tests."""

    STAFF_VIEW = "staff.view", _("See the staff list")
    STAFF_MANAGE = "staff.manage", _("Invite, deactivate and re-role staff")
    SETTINGS_MANAGE = "settings.manage", _("Change agency settings")
    CUSTOMERS_VIEW = "customers.view", _("See customer cards")
    CUSTOMERS_EDIT = "customers.edit", _("Create and edit customers")
    CUSTOMERS_IMPORT = "customers.import", _("Import and export customers")
    CUSTOMERS_MANAGE = "customers.manage", _("Merge duplicates, hand over and bulk-assign customers")
    DOCUMENTS_VIEW = "documents.view", _("See travel documents (masked)")
    DOCUMENTS_REVEAL = "documents.reveal", _("Reveal full document numbers")
    PIPELINE_WORK = "pipeline.work", _("Work leads, opportunities and trips")
    PIPELINE_MANAGE = "pipeline.manage", _("Assign leads and see everyone's pipeline")
    PAYMENTS_VIEW = "payments.view", _("See payments")
    PAYMENTS_RECORD = "payments.record", _("Record payments and refunds")
    COMPLAINTS_HANDLE = "complaints.handle", _("Handle complaints and after-sales care")
    VALUE_VIEW = "value.view", _("See a customer's value (RFM, lifetime value, segment)")
    REPORTS_VIEW = "reports.view", _("See value reports and dashboards")
    CAMPAIGNS_MANAGE = "campaigns.manage", _("Build segments and send campaigns")
    POLICIES_MANAGE = "policies.manage", _("Write corporate travel policies and service tiers")
    BILLING_MANAGE = "billing.manage", _("Manage the agency's subscription")
    DATA_EXPORT = "data.export", _("Export all of the agency's data")
    ACCESS_LOG_VIEW = "privacy.access_log", _("See who accessed customers' personal data")
    PERSONAL_DATA_EXPORT = "privacy.export", _("Export everything held about one customer")
    CUSTOMERS_ERASE = "customers.erase", _("Erase a customer's personal data (irreversible)")
    KNOWLEDGE_VIEW = "knowledge.view", _("Read the destination knowledge base")
    KNOWLEDGE_EDIT = "knowledge.edit", _("Write destination articles and visa notes")


_ALL = set(Cap)
ROLE_CAPS: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(_ALL),
    Role.MANAGER: frozenset(_ALL - {Cap.STAFF_MANAGE, Cap.SETTINGS_MANAGE, Cap.BILLING_MANAGE, Cap.PAYMENTS_RECORD,
                                    Cap.DATA_EXPORT, Cap.CUSTOMERS_ERASE, Cap.ACCESS_LOG_VIEW,
                                    Cap.PERSONAL_DATA_EXPORT}),
    Role.SALES: frozenset({
        Cap.CUSTOMERS_VIEW, Cap.CUSTOMERS_EDIT, Cap.DOCUMENTS_VIEW, Cap.DOCUMENTS_REVEAL,
        Cap.PIPELINE_WORK, Cap.PAYMENTS_VIEW, Cap.VALUE_VIEW, Cap.KNOWLEDGE_VIEW, Cap.KNOWLEDGE_EDIT,
    }),
    # Call-center agents see cards and take calls; they never see travel documents.
    Role.CALL_CENTER: frozenset({Cap.CUSTOMERS_VIEW, Cap.CUSTOMERS_EDIT, Cap.PIPELINE_WORK, Cap.COMPLAINTS_HANDLE,
                                 Cap.KNOWLEDGE_VIEW}),
    Role.SERVICE: frozenset({
        Cap.CUSTOMERS_VIEW, Cap.CUSTOMERS_EDIT, Cap.DOCUMENTS_VIEW, Cap.DOCUMENTS_REVEAL,
        Cap.PIPELINE_WORK, Cap.COMPLAINTS_HANDLE, Cap.KNOWLEDGE_VIEW, Cap.KNOWLEDGE_EDIT,
    }),
    Role.FINANCE: frozenset({
        Cap.CUSTOMERS_VIEW, Cap.PAYMENTS_VIEW, Cap.PAYMENTS_RECORD, Cap.REPORTS_VIEW, Cap.VALUE_VIEW,
        Cap.KNOWLEDGE_VIEW,
    }),
}


def role_can(role: str, cap: str) -> bool:
    return cap in ROLE_CAPS.get(role, frozenset())
