"""Demo segments for ``seed_demo``: a few useful saved segments, made once (by name)."""
from django.utils import translation
from django.utils.translation import gettext as _
from django_tenants.utils import tenant_context

from . import services
from .models import Segment


def _segments() -> list[dict]:
    return [
        {"name": _("Business-class flyers"),
         "description": _("Prefer business or first class and travelled in the last two years."),
         "definition": {"cabin": ["business", "first"], "trips": {"from": "-2y"}}},
        {"name": _("Price-sensitive"),
         "description": _("Price comes first for them: good for early-bird and discount offers."),
         "definition": {"price_sensitivity": ["high"]}},
        {"name": _("Travelled at May Day last year"),
         "description": _("Took a trip over last year's May Day holiday; offer this year's."),
         "definition": {"festival": {"key": "may_day"}}},
        {"name": _("Most valuable in Shanghai"),
         "description": _("Our most valuable customers with an address in Shanghai."),
         "definition": {"value_segment": ["most_valuable"], "city": ["上海"]}},
    ]


def seed_segments(agency) -> dict:
    """Add the demo segments (in the agency's language) that do not exist yet; returns how many were made."""
    made = 0
    with tenant_context(agency), translation.override(agency.language):
        for fields in _segments():
            if not Segment.objects.filter(name__iexact=fields["name"]).exists():
                services.segment_save(actor=None, **fields)
                made += 1
    return {"segments": made}
