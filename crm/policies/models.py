"""Models of crm.policies."""
