"""Issue 20: dates, times, money and numbers follow the agency's language and time zone everywhere,
through one layer (caravan.formatting and its template filters). (1) the layer in both languages
and two time zones, (2) no raw formatting left in templates and display code (an explicit allow-list),
(3) pages and an e-mail for an agency in Asia/Shanghai show the layer's strings."""
import re
from datetime import date, datetime, time, timezone as utc_zone
from decimal import Decimal
from pathlib import Path

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from caravan import formatting

ROOT = Path(__file__).resolve().parents[1]
AT = datetime(2026, 12, 6, 2, 14, tzinfo=utc_zone.utc)  # 10:14 in Shanghai, 21:14 the day before in New York


@pytest.mark.parametrize("language, zone, expected", [
    ("en", "Asia/Shanghai", {"day": "6 Dec 2026", "daytime": "6 Dec 2026, 10:14", "time": "10:14",
                             "month": "December 2026", "money": "CNY 2,624,529.00", "usd": "-USD 20.50",
                             "other": "THB 16,500.00"}),
    ("en", "America/New_York", {"day": "5 Dec 2026", "daytime": "5 Dec 2026, 21:14", "time": "21:14",
                                "month": "December 2026", "money": "CNY 2,624,529.00", "usd": "-USD 20.50",
                                "other": "THB 16,500.00"}),
    ("zh-hans", "Asia/Shanghai", {"day": "2026年12月6日", "daytime": "2026年12月6日 10:14", "time": "10:14",
                                  "month": "2026年12月", "money": "¥2,624,529.00", "usd": "-US$20.50",
                                  "other": "THB 16,500.00"}),
    ("zh-hans", "America/New_York", {"day": "2026年12月5日", "daytime": "2026年12月5日 21:14", "time": "21:14",
                                     "month": "2026年12月", "money": "¥2,624,529.00", "usd": "-US$20.50",
                                     "other": "THB 16,500.00"}),
])
def test_the_layer_in_both_languages_and_two_time_zones(language, zone, expected):
    with translation.override(language), timezone.override(zone):
        assert formatting.day(AT) == expected["day"]
        assert formatting.daytime(AT) == expected["daytime"]
        assert formatting.time_of_day(AT) == expected["time"]
        assert formatting.month(AT) == expected["month"]
        assert formatting.money(Decimal("2624529"), "CNY") == expected["money"]
        assert formatting.money("-20.5", "usd") == expected["usd"]
        assert formatting.money(16500, "THB") == expected["other"]
        # The raw texts stored parameters keep (ISO dates and moments, plain decimals) read the same.
        assert formatting.daytime("2026-12-06T02:14:00Z") == expected["daytime"]
        assert formatting.money("2624529.00", "CNY") == expected["money"]
        # A calendar day has no time zone: it never moves.
        assert formatting.day(date(2026, 12, 6)) == formatting.day("2026-12-06") == (
            "6 Dec 2026" if language == "en" else "2026年12月6日")
        assert formatting.time_of_day(time(14, 5)) == "14:05"
        assert formatting.num(2624529) == "2,624,529" and formatting.num(3.14159, 1) == "3.1"
        assert formatting.num(Decimal("0.5"), 0) == "1" and formatting.num(-0.001, 2) == "0.00"
        assert formatting.percent(12.5, 1) == "12.5%" and formatting.percent(None) == ""
        assert formatting.money(None) == formatting.day(None) == formatting.daytime("") == ""
        assert formatting.money(Decimal("-0.001"), "CNY") in ("CNY 0.00", "¥0.00")


def test_the_filters_match_the_functions_and_never_break_a_page():
    template = Template('{{ a|money:"CNY" }}|{{ at|daytime }}|{{ at|day }}|{{ at|time_of_day }}|{{ n|num }}|'
                        '{{ r|percent:1 }}|{{ at|date:"SHORT_DATETIME_FORMAT" }}|{{ bad|day }}|{{ none|money:"CNY" }}')
    context = Context({"a": Decimal("16500"), "at": AT, "n": 1234567, "r": 33.333, "bad": "not a date", "none": None})
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        assert template.render(context) == ("CNY 16,500.00|6 Dec 2026, 10:14|6 Dec 2026|10:14|1,234,567|33.3%|"
                                            "6 Dec 2026, 10:14|not a date|")
    with translation.override("zh-hans"), timezone.override("Asia/Shanghai"):
        assert template.render(context) == ("¥16,500.00|2026年12月6日 10:14|2026年12月6日|10:14|1,234,567|33.3%|"
                                            "2026年12月6日 10:14|not a date|")
    # Inside {% timezone %} (e-mails name the agency's zone) the filters follow it.
    zoned = Template('{% load tz %}{% timezone "America/New_York" %}{{ at|daytime }}{% endtimezone %}')
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        assert zoned.render(Context({"at": AT})) == "5 Dec 2026, 21:14"


def test_no_format_says_a_m_and_the_english_clock_is_24_hour():
    for language in ("en", "zh-hans"):
        with translation.override(language):
            for name in ("DATE_FORMAT", "DATETIME_FORMAT", "SHORT_DATE_FORMAT", "SHORT_DATETIME_FORMAT", "TIME_FORMAT"):
                rendered = Template('{{ at|date:"%s" }}' % name).render(Context({"at": datetime(2026, 12, 6, 14, 5)}))
                assert "m." not in rendered and "AM" not in rendered.upper().split()
                if "TIME" in name:
                    assert "14:05" in rendered, (language, name, rendered)
