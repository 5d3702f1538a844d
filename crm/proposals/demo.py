"""Demo data (``seed_demo``): the demo portal traveler's quote (``crm.portal.demo``) gets its proposal, sent by
the quote's owner with the agency's default texts, so `make run` shows a proposal waiting in the portal."""
from django_tenants.utils import tenant_context

from crm.portal.services import portal_settings
from crm.trips.models import Trip

from .models import Proposal
from .services import proposal_send


def seed_proposals(agency) -> dict:
    with tenant_context(agency):
        quote = (Trip.objects.filter(customer__emails__address=f"traveler@{agency.slug}.test",
                                     status=Trip.Status.QUOTE, owner__isnull=False).order_by("id").first())
        if quote is None or Proposal.objects.filter(trip=quote).exists():
            return {"proposals": 0}
        row = portal_settings()
        proposal_send(actor=quote.owner, trip=quote, included=row.proposal_included, excluded=row.proposal_excluded,
                      terms=row.proposal_terms,
                      message="京都红叶季的方案请查收，有任何问题随时联系我。" if agency.language == "zh-hans"
                      else "Here is the proposal for Kyoto in autumn; ask me anything.")
    return {"proposals": 1}
