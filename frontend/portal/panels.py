"""What each area adds to the portal's trip page and home page, so the trip page names no area's models.

Each entry is the dotted path of a function ``(page, trip) -> dict | None``: the context of one panel,
with its ``template``; ``None`` hides the panel (nothing to show this customer for this trip). Panels are
drawn in this order. ``HOME_NOTICES`` functions ``(page, trips) -> list[dict]`` give the home page's
"to do" lines (``text``, ``url``, optional ``tone``: ``warn``).
"""
from django.utils.module_loading import import_string

TRIP_PANELS: list[str] = [
    "frontend.portal.views.proposals.trip_panel",
    "frontend.portal.views.payments.trip_panel",
    "frontend.portal.views.documents.documents_panel",
    "frontend.portal.views.messages.trip_panel",
]

HOME_NOTICES: list[str] = [
    "frontend.portal.views.proposals.home_notices",
    "frontend.portal.views.payments.home_notices",
    "frontend.portal.views.documents.documents_notices",
    "frontend.portal.views.messages.home_notices",
]


def trip_panels(page, trip) -> list[dict]:
    panels = []
    for path in TRIP_PANELS:
        context = import_string(path)(page, trip)
        if context:
            panels.append(context)
    return panels


def home_notices(page, trips) -> list[dict]:
    notices = []
    for path in HOME_NOTICES:
        notices.extend(import_string(path)(page, trips) or [])
    return notices
