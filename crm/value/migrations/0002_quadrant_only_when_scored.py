"""A customer without RFM scores (no confirmed trip in the window) has no scale × loyalty quadrant.

Until now ``value_run`` put them in small-low, which the customer list and the dashboard left out
but the segment filter counted (issue 19). The column becomes nullable and existing unscored rows
lose their quadrant now, rather than at the next nightly run."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("value", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="customervalue",
            name="quadrant",
            field=models.CharField(choices=[("small_low", "Small scale, low loyalty"),
                                                        ("small_high", "Small scale, high loyalty"),
                                                        ("large_low", "Large scale, low loyalty"),
                                                        ("large_high", "Large scale, high loyalty")],
                                   default=None, max_length=10, null=True, verbose_name="scale × loyalty"),
        ),
        migrations.RunSQL(
            sql="UPDATE value_customervalue SET quadrant = NULL WHERE r_score IS NULL AND quadrant IS NOT NULL",
            reverse_sql="UPDATE value_customervalue SET quadrant = 'small_low' WHERE quadrant IS NULL",
        ),
    ]
