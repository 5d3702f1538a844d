"""Trip writes: quotes, the order, travelers, itinerary, payments, document checklists (R-SALE-3 … 5)."""
from django.db import transaction

from accounts.models import User
from crm.pipeline.models import Opportunity

from .models import Trip


@transaction.atomic
def trip_for_won_opportunity(*, actor: User | None, opportunity: Opportunity) -> Trip:
    """Called by ``pipeline.services.opportunity_move`` when an opportunity is won: the quote
    becomes the confirmed order, or, with no quote yet, a trip is made from the opportunity."""
    raise NotImplementedError  # implemented in the trips work


def quote_cancel_for_lost_opportunity(*, actor: User | None, opportunity: Opportunity) -> None:
    """Called by ``pipeline.services.opportunity_move`` when an opportunity is lost."""
    raise NotImplementedError  # implemented in the trips work
