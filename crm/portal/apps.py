from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    """The traveler's own door (issue 21): who a customer is when they sign in without a password, what
    they may see, the agency's branding and defaults for what customers are shown, and the messages
    between a customer and the agency. The pages are ``frontend/portal``; proposals, online payments and
    document scans are the apps ``crm.proposals``, ``crm.checkout`` and ``crm.documents`` on top of it."""

    name = "crm.portal"
    label = "portal"
    verbose_name = _("Customer portal")
