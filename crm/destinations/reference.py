"""Reference data for destinations: countries (ISO 3166, ``pycountry``, with the Chinese names pycountry
ships as the ``zh_CN`` gettext catalogue), cities and airports (``airportsdata``: city, country, IATA
code), and a small table of the Chinese names of the cities Chinese agencies sell most, so "东京" finds
Tokyo. Everything is read once and kept in memory (``lru_cache``)."""
import gettext
import re
from functools import lru_cache

import pycountry

from integrations.reference import airports

# The short names people say where pycountry's official Chinese name is long ("大韩民国").
COUNTRY_ZH_COMMON = {
    "KR": "韩国", "KP": "朝鲜", "US": "美国", "RU": "俄罗斯", "TW": "中国台湾", "HK": "中国香港", "MO": "中国澳门",
    "LA": "老挝", "VN": "越南", "IR": "伊朗", "SY": "叙利亚", "TZ": "坦桑尼亚", "BO": "玻利维亚", "VE": "委内瑞拉",
    "GB": "英国", "AE": "阿联酋", "CZ": "捷克", "NL": "荷兰", "NZ": "新西兰",
}

# Other names people write for a country (lower-case), checked before airport codes ("USA" is one too).
COUNTRY_ALIASES = {"usa": "US", "us": "US", "america": "US", "uk": "GB", "england": "GB", "scotland": "GB",
                   "uae": "AE", "holland": "NL", "korea": "KR", "south korea": "KR", "russia": "RU",
                   "vietnam": "VN", "laos": "LA", "taiwan": "TW", "bali": "ID", "巴厘": "ID", "欧洲": "", "港澳": ""}

# English city name (as airportsdata spells it) → (Chinese name, country).
CITY_ZH = {
    "Tokyo": ("东京", "JP"), "Osaka": ("大阪", "JP"), "Kyoto": ("京都", "JP"), "Sapporo": ("札幌", "JP"),
    "Okinawa": ("冲绳", "JP"), "Naha": ("那霸", "JP"), "Nagoya": ("名古屋", "JP"), "Fukuoka": ("福冈", "JP"),
    "Seoul": ("首尔", "KR"), "Busan": ("釜山", "KR"), "Jeju": ("济州", "KR"),
    "Bangkok": ("曼谷", "TH"), "Phuket": ("普吉岛", "TH"), "Chiang Mai": ("清迈", "TH"),
    "Singapore": ("新加坡", "SG"), "Kuala Lumpur": ("吉隆坡", "MY"), "Kota Kinabalu": ("亚庇", "MY"),
    "Denpasar": ("巴厘岛", "ID"), "Jakarta": ("雅加达", "ID"), "Manila": ("马尼拉", "PH"), "Cebu": ("宿务", "PH"),
    "Hanoi": ("河内", "VN"), "Ho Chi Minh City": ("胡志明市", "VN"), "Da Nang": ("岘港", "VN"),
    "Siem Reap": ("暹粒", "KH"), "Male": ("马累", "MV"), "Colombo": ("科伦坡", "LK"), "Kathmandu": ("加德满都", "NP"),
    "Dubai": ("迪拜", "AE"), "Abu Dhabi": ("阿布扎比", "AE"), "Doha": ("多哈", "QA"), "Istanbul": ("伊斯坦布尔", "TR"),
    "Cairo": ("开罗", "EG"), "Nairobi": ("内罗毕", "KE"), "Cape Town": ("开普敦", "ZA"), "Johannesburg": ("约翰内斯堡", "ZA"),
    "Paris": ("巴黎", "FR"), "Nice": ("尼斯", "FR"), "London": ("伦敦", "GB"), "Edinburgh": ("爱丁堡", "GB"),
    "Rome": ("罗马", "IT"), "Milan": ("米兰", "IT"), "Venice": ("威尼斯", "IT"), "Florence": ("佛罗伦萨", "IT"),
    "Barcelona": ("巴塞罗那", "ES"), "Madrid": ("马德里", "ES"), "Lisbon": ("里斯本", "PT"),
    "Amsterdam": ("阿姆斯特丹", "NL"), "Frankfurt": ("法兰克福", "DE"), "Munich": ("慕尼黑", "DE"), "Berlin": ("柏林", "DE"),
    "Zurich": ("苏黎世", "CH"), "Geneva": ("日内瓦", "CH"), "Vienna": ("维也纳", "AT"), "Prague": ("布拉格", "CZ"),
    "Athens": ("雅典", "GR"), "Santorini": ("圣托里尼", "GR"), "Moscow": ("莫斯科", "RU"), "Reykjavik": ("雷克雅未克", "IS"),
    "Helsinki": ("赫尔辛基", "FI"), "Copenhagen": ("哥本哈根", "DK"), "Stockholm": ("斯德哥尔摩", "SE"),
    "New York": ("纽约", "US"), "Los Angeles": ("洛杉矶", "US"), "San Francisco": ("旧金山", "US"),
    "Las Vegas": ("拉斯维加斯", "US"), "Honolulu": ("檀香山", "US"), "Seattle": ("西雅图", "US"),
    "Vancouver": ("温哥华", "CA"), "Toronto": ("多伦多", "CA"),
    "Sydney": ("悉尼", "AU"), "Melbourne": ("墨尔本", "AU"), "Brisbane": ("布里斯班", "AU"), "Cairns": ("凯恩斯", "AU"),
    "Auckland": ("奥克兰", "NZ"), "Queenstown": ("皇后镇", "NZ"), "Interlaken": ("因特拉肯", "CH"), "Nadi": ("楠迪", "FJ"), "Saipan": ("塞班", "MP"),
    "Hong Kong": ("香港", "HK"), "Macau": ("澳门", "MO"), "Taipei": ("台北", "TW"),
    "Beijing": ("北京", "CN"), "Shanghai": ("上海", "CN"), "Guangzhou": ("广州", "CN"), "Chengdu": ("成都", "CN"),
    "Sanya": ("三亚", "CN"), "Xi'an": ("西安", "CN"), "Kunming": ("昆明", "CN"), "Lijiang": ("丽江", "CN"),
    "Guilin": ("桂林", "CN"), "Dali": ("大理", "CN"), "Lhasa": ("拉萨", "CN"), "Harbin": ("哈尔滨", "CN"), "Xiamen": ("厦门", "CN"),
}


@lru_cache(maxsize=1)
def _zh_countries() -> gettext.NullTranslations:
    try:
        return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"])
    except OSError:  # a pycountry built without its catalogues
        return gettext.NullTranslations()


@lru_cache(maxsize=1)
def countries() -> dict[str, dict]:
    """alpha-2 → {"code", "name_en", "name_zh", "names": every name it is known by}."""
    result = {}
    zh = _zh_countries()
    for country in pycountry.countries:
        official_zh = zh.gettext(country.name)
        common_zh = COUNTRY_ZH_COMMON.get(country.alpha_2, "")
        names = {country.name, getattr(country, "common_name", "") or "", getattr(country, "official_name", "") or "",
                 official_zh if official_zh != country.name else "", common_zh}
        result[country.alpha_2] = {
            "code": country.alpha_2,
            "name_en": getattr(country, "common_name", None) or country.name,
            "name_zh": common_zh or (official_zh if official_zh != country.name else ""),
            "names": sorted(n for n in names if n),
        }
    return result


def country(code: str) -> dict | None:
    return countries().get((code or "").upper())


def country_name(code: str, lang: str = "en") -> str:
    found = country(code)
    if not found:
        return code or ""
    return (found["name_zh"] or found["name_en"]) if lang.startswith("zh") else found["name_en"]


def country_choices(lang: str = "en") -> list[tuple[str, str]]:
    return sorted(((code, f"{country_name(code, lang)} ({code})") for code in countries()), key=lambda c: c[1])


@lru_cache(maxsize=1)
def cities() -> dict[tuple[str, str], dict]:
    """(lower-case English city, country) → {"city", "country", "iata": [airport codes], "name_zh"}."""
    result: dict[tuple[str, str], dict] = {}
    for code, airport in airports().items():
        name = (airport.get("city") or "").strip()
        if not name or not code:
            continue
        entry = result.setdefault((name.lower(), airport["country"]),
                                  {"city": name, "country": airport["country"], "iata": [], "name_zh": ""})
        entry["iata"].append(code)
    for name, (zh, cc) in CITY_ZH.items():
        entry = result.setdefault((name.lower(), cc), {"city": name, "country": cc, "iata": [], "name_zh": ""})
        entry["name_zh"] = zh
    for entry in result.values():
        entry["iata"].sort()
    return result


@lru_cache(maxsize=1)
def _city_by_zh() -> dict[str, dict]:
    return {entry["name_zh"]: entry for entry in cities().values() if entry["name_zh"]}


@lru_cache(maxsize=1)
def _country_by_name() -> dict[str, str]:
    found = {}
    for code, entry in countries().items():
        for name in entry["names"]:
            found.setdefault(name.lower(), code)
        if getattr(pycountry.countries.get(alpha_2=code), "alpha_3", None):
            found.setdefault(pycountry.countries.get(alpha_2=code).alpha_3.lower(), code)
    return found


def city_zh(city: str, country_code: str = "") -> str:
    """The Chinese name of an English city name, or ""."""
    if country_code:
        entry = cities().get(((city or "").strip().lower(), country_code.upper()))
        return entry["name_zh"] if entry else ""
    found = CITY_ZH.get((city or "").strip())
    if found:
        return found[0]
    lowered = (city or "").strip().lower()
    return next((zh for name, (zh, _cc) in CITY_ZH.items() if name.lower() == lowered), "")


def airport_city(code: str) -> dict | None:
    """The city entry of an IATA airport code."""
    airport = airports().get((code or "").strip().upper())
    if not airport:
        return None
    return cities().get(((airport.get("city") or "").lower(), airport["country"]))


def find_place(text: str) -> dict:
    """What a free-text destination names: {"city": English name or "", "country": alpha-2 or "",
    "iata": code or ""}. Reads an IATA code ("NRT"), a Chinese city ("东京"), an English city
    ("Tokyo", "Tokyo, Japan"), a country in English or Chinese ("日本", "Japan") or its code ("JP")."""
    text = (text or "").strip()
    found = {"city": "", "country": "", "iata": ""}
    if not text:
        return found
    parts = [p.strip() for p in re.split(r"[,，、/·\-–—()（）]+", text) if p.strip()] or [text]
    # Whole text first, then its parts ("Tokyo, Japan" → "Tokyo", "Japan"), and a part that names nothing
    # as a whole, word by word ("日本 东京" → "日本", "东京").
    candidates = [text]
    for part in parts:
        candidates.append(part)
        words = part.split()
        if len(words) > 1:
            candidates.extend(words)
    for part in candidates:
        _read_part(part, found, word=part not in parts and part != text)
    # A Chinese text that contains a known city or country name ("日本东京五日游", "泰国 普吉岛").
    if not found["city"]:
        for zh, entry in sorted(_city_by_zh().items(), key=lambda item: -len(item[0])):
            if zh in text and (not found["country"] or entry["country"] == found["country"]):
                found["city"], found["country"] = entry["city"], entry["country"]
                break
    if not found["country"]:
        for code, entry in countries().items():
            if entry["name_zh"] and entry["name_zh"] in text:
                found["country"] = code
                break
    return found


def _read_part(part: str, found: dict, *, word: bool = False) -> None:
    """Fill what ``part`` names into ``found`` (a city, its country, an airport code), keeping what is set.
    A ``word`` of a longer part is read as an airport code only when written in capitals ("NRT", not "New")."""
    alias = COUNTRY_ALIASES.get(part.lower())
    if alias is not None:
        found["country"] = found["country"] or alias
        return
    if (re.fullmatch(r"[A-Za-z]{3}", part) and part.upper() in airports()
            and (not word or part.isupper())):
        entry = airport_city(part)
        found["iata"] = found["iata"] or part.upper()
        if entry and not found["city"]:
            found["city"], found["country"] = entry["city"], entry["country"]
        return
    if part in _city_by_zh():
        if not found["city"]:
            entry = _city_by_zh()[part]
            found["city"], found["country"] = entry["city"], entry["country"]
        return
    code = _country_by_name().get(part.lower())
    if code is None and re.fullmatch(r"[A-Za-z]{2}", part) and part.upper() in countries():
        code = part.upper()
    if code:
        found["country"] = found["country"] or code
        return
    if not found["city"]:
        matches = [entry for (name, _cc), entry in cities().items() if name == part.lower()
                   and (not found["country"] or entry["country"] == found["country"])]
        if matches:
            # Several countries have a city of that name: prefer one with a Chinese name, then most airports.
            best = sorted(matches, key=lambda e: (not e["name_zh"], -len(e["iata"])))[0]
            found["city"] = best["city"]
            found["country"] = found["country"] or best["country"]
