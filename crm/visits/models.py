"""Models of crm.visits."""
