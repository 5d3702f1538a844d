"""What the pipeline tells the apps that depend on it (``caravan.hooks``; connected in their
``AppConfig.ready()``)."""
from caravan.hooks import Hook

# lead_intake made an opportunity from an enquiry (keywords: opportunity, contact — the enquiry's
# inbound contact). Tiers: the lead's service-level clock.
lead_received = Hook("pipeline.lead_received")
# opportunity_move moved an opportunity; ``opportunity.stage`` is the new stage (keywords: actor,
# opportunity). Tiers: the first move answers the lead. Trips: won confirms the order, lost cancels the quote.
opportunity_moved = Hook("pipeline.opportunity_moved")
