"""What the customers core tells the apps that depend on it (``caravan.hooks``; connected in their
``AppConfig.ready()``)."""
from caravan.hooks import Hook

# contact_add logged a contact (keyword: contact). Tiers: a response stops clocks, a request starts one.
contact_added = Hook("crm.contact_added")
