"""What the customers core tells the apps that depend on it (``caravan.hooks``; connected in their
``AppConfig.ready()``)."""
from django.db import models
from django.utils.translation import gettext_lazy as _

from caravan.hooks import Hook

# contact_add logged a contact (keywords: contact, lead — True for a lead's enquiry, whose clock the lead's
# own hook starts). Tiers: a response stops clocks, a request starts one.
contact_added = Hook("crm.contact_added")


class Seen(models.TextChoices):
    """What of a customer's data someone saw: the kinds of the access log (crm.privacy's AccessEntry.What)."""

    CARD_VIEW = "card_view", _("Opened the customer card")
    HISTORY_VIEW = "history_view", _("Read the change history")
    API_READ = "api_read", _("Read customer data through the API")
    DOCUMENT_REVEAL = "document_reveal", _("Revealed a document number")
    DOCUMENT_FILE = "document_file", _("Downloaded a document scan")
    CUSTOMER_EXPORT = "customer_export", _("Exported the customer list")
    DATA_EXPORT = "data_export", _("Downloaded all of a customer's data")


class SeenVia(models.TextChoices):
    """How it was seen (AccessEntry.Via)."""

    PAGE = "page", _("Web page")
    API = "api", _("API")
    TASK = "task", _("Background job")


# Someone saw a customer's data (keywords: user, what (Seen), via (SeenVia; None: the request being
# served says), customer or customer_id (neither for the list export), detail). Privacy logs it.
# Required: with nothing connected it raises (caravan.hooks.NoReceiver), so an access is never left
# unlogged because the log's app was not there.
customer_data_seen = Hook("crm.customer_data_seen", required=True)
