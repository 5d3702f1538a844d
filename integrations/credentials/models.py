"""A feed's secrets, kept in the schema of whoever owns the feed (this app is both a shared and a
tenant app, so the table exists in the public schema and in every agency's schema):

- a shared feed's credentials are the platform's, in the public schema;
- an agency's own feed (its negotiated-rate account with the supplier) keeps its credentials in that
  agency's schema, next to the rest of its data: they go when the agency's schema goes, and no query
  in another agency's or the platform's search path can read them.

Only ``integrations.services`` reads and writes these, switching to the owner's schema."""
from django.db import models


class FeedCredential(models.Model):
    # The public-schema feed's id. No foreign key: a row in an agency's schema cannot safely point
    # across schemas (deletes are made by integrations.services.feed_delete).
    feed_id = models.BigIntegerField(unique=True)
    username = models.CharField(max_length=120, blank=True)
    secret_encrypted = models.TextField(blank=True)  # the pull password or token (crm.customers.crypto)
    push_secret_encrypted = models.TextField(blank=True)  # the HMAC key that signs pushes (crm.customers.crypto)

    def __str__(self):
        return f"credentials of feed {self.feed_id}"
