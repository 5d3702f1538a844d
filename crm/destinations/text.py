"""The search text of an article and the words of a query: lower-cased, Chinese text also as pinyin
(syllables, joined, and initials) with ``pypinyin``, so "东京", "dongjing", "dong jing", "dj" and
"tokyo" all find Tokyo."""
import re

from . import reference

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_SPLIT = re.compile(r"[\s,，、;；/|·]+")


def pinyin_forms(text: str) -> list[str]:
    """For each run of Chinese characters in ``text``: its pinyin syllables, joined, and initials."""
    # pypinyin's dictionaries are about 55 MB: loaded by the article writes that need them, not by
    # every web process (a query's words are matched against stored text, without pinyin).
    from pypinyin import Style, lazy_pinyin

    forms: list[str] = []
    for run in _HAN.findall(text or ""):
        syllables = lazy_pinyin(run)
        forms.extend([" ".join(syllables), "".join(syllables),
                      "".join(lazy_pinyin(run, style=Style.FIRST_LETTER))])
    return forms


def search_text(article) -> str:
    """What search looks in, for one article (titles, places in both languages, codes, tags, pinyin)."""
    country = reference.country(article.country) or {}
    city_zh = reference.city_zh(article.city, article.country) or reference.city_zh(article.city)
    parts = [article.title_en, article.title_zh, article.country, *country.get("names", []),
             country.get("name_zh", ""), article.region, article.city, city_zh, *article.iata_codes, *article.tags]
    chinese = " ".join(p for p in (article.title_zh, country.get("name_zh", ""), city_zh, article.region,
                                   *article.tags) if p)
    parts.extend(pinyin_forms(chinese))
    return " | ".join(p.strip() for p in parts if p and p.strip()).lower()


def query_terms(query: str) -> list[str]:
    """The words of a search: lower-cased, split on spaces and commas; Chinese words kept whole."""
    return [term for term in _SPLIT.split((query or "").strip().lower()) if term][:8]
