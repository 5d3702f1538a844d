"""Each segment filter is declared once (crm.segments.filters) and complete: it cleans a value, narrows
the customers and reads in words, and the builder page has fields for it. A filter added to the
registry without one of these fails here, with the filter named."""
import pytest
from django.db.models import QuerySet
from django_tenants.utils import tenant_context

from crm.customers.models import Customer
from crm.segments import filters
from crm.segments.definition import validate
from crm.segments.query import customers_matching
from crm.segments.selectors import describe, filter_labels
from frontend.views.segments import SegmentForm

pytestmark = pytest.mark.django_db

# One valid value per filter, as a definition would give it.
SAMPLES = {
    "kind": "person", "city": ["上海"], "age": {"min": 30}, "tier": [1], "owner": ["none"], "tags": ["VIP"],
    "trips": {"min": 2, "from": "-12m"}, "destination": {"any": ["日本"]}, "spend": {"min": "100", "basis": "margin"},
    "last_trip": {"before": "-6m"}, "festival": {"key": "spring_festival"}, "price_sensitivity": ["high"],
    "discount_share": {"min": 30}, "airline": ["CA"], "cabin": ["business"], "hotel_chain": ["Hilton"],
    "interest": ["golf"], "rfm": {"r_min": 4}, "value_segment": ["growth"], "quadrant": ["large_high"],
    "late_payer": True, "p_alive": {"max": 50}, "emailable": True,
}


def test_every_filter_has_a_sample_here():
    assert set(SAMPLES) == set(filters.FILTERS), "give the new filter a sample value in SAMPLES"


@pytest.mark.parametrize("key", list(filters.FILTERS))
def test_every_filter_cleans_narrows_and_reads_in_words(alpha, key):
    f = filters.FILTERS[key]
    assert f.key == key and f.group in filters.GROUPS and str(f.label)
    with tenant_context(alpha):
        cleaned = validate({key: SAMPLES[key]}, references=False)
        assert key in cleaned, "clean dropped the sample"
        narrowed = customers_matching(cleaned)
        everyone = Customer.objects.filter(merged_into__isnull=True)
        assert isinstance(narrowed, QuerySet) and str(narrowed.query) != str(everyone.query), "narrow did nothing"
        narrowed.count()  # the SQL runs
        words = describe(cleaned)
        assert len(words) == 1 and words[0][0] == filter_labels()[key] and words[0][1].strip(), "no words"
    assert key in SegmentForm.GROUPS, "the builder page has no fields for this filter"
    assert filters.FILTERS[key].group in filters.GROUPS, "the builder shows no section for this filter's group"
