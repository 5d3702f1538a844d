"""``crm_search_grams`` priced at what it is to the planner (issue 22): COST 10000 instead of PL/pgSQL's default 100.

The grams index's pending list (GIN ``fastupdate``: rows written since the last vacuum, read on every scan) is added
to the index's price; after ~30,000 rows written and deleted, a 1,000-customer agency's one- and two-character
searches read the table (or the ``merged_into_id`` index) and ran the function on every live row instead of asking
the index (seen in CI, reproduced in tests/test_customer_search_speed.py). The function costs ~5 µs a row, more than
the 0.25 cost units (100 × cpu_operator_cost) the planner assumed; at 10,000 a plan that runs it on every row costs
more than any pending list (at most gin_pending_list_limit, 4 MB). Planning only: no write pays for it, which
``fastupdate = off`` on the index would have done (every written row's grams into the index at once)."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("crm", "0012_changelog_customer_unchecked")]

    operations = [
        migrations.RunSQL("ALTER FUNCTION crm_search_grams(text) COST 10000",
                          "ALTER FUNCTION crm_search_grams(text) COST 100"),
    ]
