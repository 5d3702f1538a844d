"""Platform-side work for the agency lifecycle (public schema)."""
from celery import shared_task

from caravan.tenancy.tasks import PlatformTask


@shared_task(base=PlatformTask, name="tenants.fill_schema_pool")
def fill_schema_pool() -> int:
    """Top the pool of ready agency schemas up to SCHEMA_POOL_SIZE (tenants/schemas.py)."""
    from .schemas import pool_fill

    return pool_fill()
