from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ProposalsConfig(AppConfig):
    """Proposals (issue 21): a quote as the customer reads it in the portal — a frozen, hashed version of
    the trip sent by staff — the customer's acceptance of it, which wins the opportunity and confirms the
    trip, and the PDFs of a proposal and of a confirmed trip's itinerary."""

    name = "crm.proposals"
    label = "proposals"
    verbose_name = _("Proposals")
