"""Models of crm.tiers."""
