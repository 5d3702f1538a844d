"""pg_trgm once per database, in public (on every agency's search_path): for fuzzy name search."""
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]
    operations = [TrigramExtension()]
