"""Operator console pages (platform domain), one module per area."""
