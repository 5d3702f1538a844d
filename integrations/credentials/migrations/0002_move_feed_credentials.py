"""Move feed credentials out of the public feeds table into the schema of each feed's owner: shared
feeds' into the public table; each agency's own feeds' into that agency's schema (run by each
agency's migration, after the public one has gathered them)."""
from django.db import migrations
from django_tenants.utils import get_public_schema_name


def move(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.schema_name == get_public_schema_name():
            cursor.execute("""
                INSERT INTO feed_credentials_feedcredential (feed_id, username, secret_encrypted, push_secret_encrypted)
                SELECT id, username, secret_encrypted, push_secret_encrypted FROM integrations_feed
                ON CONFLICT (feed_id) DO NOTHING""")
            return
        cursor.execute("""
            WITH moved AS (
                DELETE FROM public.feed_credentials_feedcredential c
                USING public.integrations_feed f JOIN public.tenants_agency a ON a.id = f.agency_id
                WHERE c.feed_id = f.id AND a.schema_name = %s
                RETURNING c.feed_id, c.username, c.secret_encrypted, c.push_secret_encrypted)
            INSERT INTO feed_credentials_feedcredential (feed_id, username, secret_encrypted, push_secret_encrypted)
            SELECT feed_id, username, secret_encrypted, push_secret_encrypted FROM moved""", [connection.schema_name])


class Migration(migrations.Migration):
    dependencies = [
        ("feed_credentials", "0001_initial"),
        ("integrations", "0001_initial"),
        ("tenants", "0003_plan_from_billing"),
    ]
    operations = [migrations.RunPython(move, migrations.RunPython.noop)]
