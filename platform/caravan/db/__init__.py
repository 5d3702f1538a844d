"""Caravan's database backend for PgBouncer in transaction-pooling mode (see base.py)."""
