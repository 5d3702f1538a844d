"""What care tells the apps that depend on it (``caravan.hooks``; connected in their
``AppConfig.ready()``)."""
from caravan.hooks import Hook

# complaint_log logged a complaint (keyword: complaint). Tiers: the complaint's service-level clock.
complaint_logged = Hook("care.complaint_logged")
# complaint_set_status changed a complaint's status (keywords: complaint, actor). Tiers: in progress
# or resolved answers the clock.
complaint_status_set = Hook("care.complaint_status_set")
