"""Read-heavy reports from a streaming replica (DATABASE_REPLICA_URL, caravan/db/replica.py).

A real primary and hot standby are made from the machine's PostgreSQL binaries, the primary a copy
of the test database (alpha, bravo, charlie). ``default`` is pointed at that primary and the
``replica`` alias at the standby, with the router on, as settings.py does when
DATABASE_REPLICA_URL is set. Rows written on the primary are committed there (the cluster is
thrown away afterwards).
"""
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from caravan.db.replica import REPLICA
from crm.customers.models import ChangeLog
from crm.customers.services import customer_create
from crm.value import selectors
from crm.value.models import CustomerValue
from tests.servers import on_default, replica_caught_up, streaming_replica_cluster

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), streaming_replica_cluster(connection.settings_dict) as made:
        yield made


@contextmanager
def on_cluster(cluster, settings):
    """``default`` on the cluster's primary, ``replica`` on its standby, the router on."""
    settings.DATABASE_ROUTERS = [*settings.DATABASE_ROUTERS, "caravan.db.replica.ReplicaRouter"]
    base = {**connection.settings_dict, "OPTIONS": dict(connection.settings_dict["OPTIONS"]), "CONN_MAX_AGE": 0}
    primary = type(connections["default"])({**base, **cluster.primary, "TEST": {}}, alias="default")
    connections.settings[REPLICA] = {**base, **cluster.replica, "TEST": {"MIRROR": "default"}}
    # Connected here: Django's TestCase refuses to open a connection for an alias it was not told of.
    connections[REPLICA].connect()
    try:
        with on_default(primary):
            yield primary
    finally:
        primary.close()
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


def valued(name: str, segment: str) -> None:
    now = timezone.now()
    customer = customer_create(actor=None, via=ChangeLog.Via.SYSTEM, name=name)
    CustomerValue.objects.create(customer=customer, first_trip_at=now - timedelta(days=400), last_trip_at=now,
                                 trips_total=2, revenue_total=Decimal(1000), margin_total=Decimal(100), segment=segment)


def report() -> dict[str, int]:
    return {row["segment"]: row["customers"] for row in selectors.segment_summary()}


def on_primary() -> dict[str, int]:
    """The same counts read with an explicit ``using("default")`` (no router): the primary's truth."""
    counts = dict.fromkeys(CustomerValue.Segment.values, 0)
    for segment in CustomerValue.objects.using("default").values_list("segment", flat=True):
        counts[segment] += 1
    return counts


def replay(cluster, pause: bool) -> None:
    with psycopg.connect(host=cluster.replica["HOST"], port=cluster.replica["PORT"], user=cluster.replica["USER"],
                         dbname=cluster.replica["NAME"], autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if pause else "SELECT pg_wal_replay_resume()")


def test_value_report_reads_the_replica_on_the_right_agency(cluster, settings, alpha, bravo):
    with on_cluster(cluster, settings):
        with tenant_context(alpha):
            valued("Replica Alpha 1", "most_valuable")
            valued("Replica Alpha 2", "most_valuable")
        with tenant_context(bravo):
            valued("Replica Bravo 1", "growth")
        replica_caught_up(cluster)
        seen = {}
        for agency in (alpha, bravo, alpha):
            with tenant_context(agency):
                seen[agency.slug] = report()
                assert seen[agency.slug] == on_primary()  # its own agency's rows, on the replica
                assert connections[REPLICA].schema_name == agency.schema_name
        assert seen["alpha"] != seen["bravo"]
        assert seen["alpha"]["most_valuable"] >= 2 and seen["bravo"]["growth"] >= 1

        replay(cluster, pause=True)  # the standby stops applying the primary's changes
        try:
            with tenant_context(alpha):
                valued("Replica Alpha 3", "most_valuable")
                assert on_primary()["most_valuable"] == seen["alpha"]["most_valuable"] + 1
                assert report() == seen["alpha"]  # read from the paused replica: the new row is not there
                with transaction.atomic():  # a transaction reads its own database, the primary
                    assert report()["most_valuable"] == seen["alpha"]["most_valuable"] + 1
        finally:
            replay(cluster, pause=False)
        replica_caught_up(cluster)
        with tenant_context(alpha):
            assert report()["most_valuable"] == seen["alpha"]["most_valuable"] + 1
        with tenant_context(bravo):
            assert report() == seen["bravo"]  # alpha's new customer never counts in bravo, replica or not


def test_without_a_replica_nothing_is_routed(alpha):
    from django.db import router

    assert REPLICA not in connections.settings
    with tenant_context(alpha):
        assert router.db_for_read(CustomerValue) == "default"
        assert selectors.segment_summary()  # works on default
