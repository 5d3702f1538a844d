"""The change log's customer without a database constraint (issue 22): it was checked once per entry at commit,
~80,000 checks for an import of 10,000 customers, about a quarter of the import's time. Django still deletes a
deleted customer's entries (CASCADE is applied by the ORM); the product merges and anonymises customers and never
deletes one (crm.customers.models.ChangeLog)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("crm", "0011_customer_search_grams"),
    ]

    operations = [
        migrations.AlterField(
            model_name="changelog",
            name="customer",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="changes", to="crm.customer"),
        ),
    ]
