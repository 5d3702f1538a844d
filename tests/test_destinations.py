"""The destination knowledge base (R-CUST-10): articles, search in Chinese, pinyin and English, visa notes
and staleness, the operators' shared base and copying from it, import, the API, and the fences."""
import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from accounts.models import User
from crm.destinations import selectors, services
from crm.destinations.models import STALE_AFTER_DAYS, Article, ArticleChange, VisaNote

from .conftest import OPERATOR, staff

pytestmark = pytest.mark.django_db

TOKYO = {"kind": "city", "country": "jp", "city": "Tokyo", "iata_codes": "NRT, HND", "title_en": "Tokyo",
         "title_zh": "东京", "overview_en": "Capital of Japan.", "overview_zh": "日本首都。", "tags": ["美食", "shopping"]}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _article(actor, **data):
    return services.article_save(actor=actor, article=None, data={**TOKYO, **data})


def test_article_save_validates_records_and_keeps_search_text(alpha):
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        with pytest.raises(ValidationError) as refused:
            services.article_save(actor=admin, article=None, data={"kind": "city", "country": "XX", "iata_codes": "TOKYO"})
        errors = refused.value.message_dict
        assert {"country", "city", "iata_codes", "title_en"} <= set(errors)
        with pytest.raises(ValidationError) as refused:
            _article(admin, climate=[{"high": 10}] * 11)
        assert "climate" in refused.value.message_dict
        article = _article(admin, climate=[{"high": 10, "low": 2, "rain_mm": 50, "note": ""}] * 12)
        assert article.country == "JP" and article.iata_codes == ["NRT", "HND"]
        assert "东京" in article.search_text and "dongjing" in article.search_text and "tokyo" in article.search_text
        assert "日本" in article.search_text  # the country's Chinese name
        assert article.created_by == admin
        services.article_save(actor=staff(alpha, "sales"), article=article, data={"tips_zh": "早去浅草寺。"})
        change = article.changes.first()
        assert change.kind == ArticleChange.Kind.UPDATED and change.fields == ["tips_zh"]
        assert change.actor.email == "sales@alpha.test"
        assert [c.kind for c in article.changes.all()] == ["updated", "created"]


@pytest.mark.parametrize("query", ["东京", "东 京", "dongjing", "dong jing", "DJ", "tokyo", "Tokyyo", "NRT", "日本", "japan"])
def test_search_takes_chinese_pinyin_and_english(alpha, query):
    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        tokyo = _article(admin)
        paris = _article(admin, country="FR", city="Paris", iata_codes="CDG", title_en="Paris", title_zh="巴黎", tags=[])
        found = list(selectors.search(query))
        assert tokyo in found and paris not in found


def test_article_for_place_and_customer(alpha):
    from crm.customers.models import Customer, Preferences
    from crm.trips.models import Trip

    admin = staff(alpha, "admin")
    with tenant_context(alpha):
        tokyo = _article(admin)
        osaka = _article(admin, city="Osaka", iata_codes="KIX", title_en="Osaka", title_zh="大阪")
        japan = _article(admin, kind="country", city="", iata_codes="", title_en="Japan", title_zh="日本")
        for text in ("东京", "Tokyo", "Tokyo, Japan", "NRT", "东京五日游"):
            assert selectors.article_for_place(text) == tokyo, text
        assert selectors.article_for_place("KIX") == osaka
        assert selectors.article_for_place("日本") == japan
        assert selectors.article_for_place("Sapporo, Japan") == japan  # no city article: the country's
        assert selectors.article_for_place("Paris") is None
        customer = Customer.objects.create(name="王芳")
        Preferences.objects.create(customer=customer, interests=["日本"])
        for destination in ("东京", "Osaka", "Tokyo", "Paris"):
            Trip.objects.create(customer=customer, title=destination, destination=destination, currency="CNY")
        assert selectors.articles_for_customer(customer) == [japan, tokyo, osaka]
