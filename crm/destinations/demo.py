"""Demo articles: for each demo agency its top destinations (by its demo trips), bilingual, with a visa
note for Chinese citizens (one checked long ago, so the stale flag shows); and three articles in the
operators' shared base. Idempotent: an agency that has articles, or a shared base that has some, is left
as it is. The visa facts are demo text, not advice."""
from collections import Counter
from datetime import timedelta

from django.db.models import Count
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_context, tenant_context

from accounts.models import User
from accounts.roles import Role

from . import reference, services
from .models import STALE_AFTER_DAYS, Article, VisaNote

MONTHS_TOKYO = [(10, 1, 52), (10, 2, 56), (14, 5, 118), (19, 10, 125), (23, 15, 138), (26, 19, 168),
                (30, 23, 154), (31, 24, 168), (27, 21, 210), (22, 15, 198), (17, 9, 93), (12, 4, 51)]


def _climate(months, note_en=""):
    return [{"high": h, "low": low, "rain_mm": r, "note": note_en if i in (5, 6) else ""}
            for i, (h, low, r) in enumerate(months)]


# (country, city or "") → article text and the CN visa note (requirement, stay days, documents, en, zh).
CONTENT = {
    ("JP", "Tokyo"): {
        "kind": "city", "iata_codes": ["NRT", "HND"], "title_en": "Tokyo", "title_zh": "东京", "tags": ["城市", "美食", "购物"],
        "overview_en": "Japan's capital: neighbourhoods that each feel like a city, excellent food at every price, "
                       "and easy day trips to Kamakura, Hakone and Nikko.",
        "overview_zh": "日本首都，每个街区都各具特色；各种价位的美食；镰仓、箱根、日光一日游都很方便。",
        "attractions_en": "Senso-ji in Asakusa, Meiji Shrine, Shibuya crossing, teamLab, Tsukiji outer market.",
        "attractions_zh": "浅草寺、明治神宫、涩谷十字路口、teamLab 数字艺术馆、筑地场外市场。",
        "lodging_en": "Shinjuku and Ginza for first visits; rooms are small, book family rooms early.",
        "lodging_zh": "初次来访推荐新宿、银座；房间普遍较小，家庭房请尽早预订。",
        "transport_en": "Suica card for trains and buses; Narita Express or Keisei Skyliner from Narita.",
        "transport_zh": "乘坐电车和巴士用 Suica 卡；成田机场可乘 N'EX 或京成 Skyliner 进城。",
        "health_safety_en": "Very safe. Earthquake instructions are posted in every hotel room.",
        "health_safety_zh": "治安很好。酒店房间内均张贴地震应急说明。",
        "tips_en": "Cherry blossom weeks (late March) sell out months ahead.",
        "tips_zh": "樱花季（三月下旬）酒店需提前数月预订。",
        "climate": _climate(MONTHS_TOKYO, "rainy season"),
        "visa": ("visa", 15, ["passport", "photos", "form", "assets", "employment"],
                 "Single-entry tourist visa through an accredited agency; about 5 working days.",
                 "单次旅游签证须经指定旅行社送签，约 5 个工作日。"),
    },
    ("TH", "Phuket"): {
        "kind": "city", "iata_codes": ["HKT"], "title_en": "Phuket", "title_zh": "普吉岛", "tags": ["海岛", "亲子"],
        "overview_en": "Thailand's largest island: beaches, island-hopping to Phi Phi and Phang Nga Bay.",
        "overview_zh": "泰国最大的岛屿：海滩度假，可出海前往皮皮岛和攀牙湾。",
        "attractions_en": "Phi Phi islands, Phang Nga Bay, Old Phuket Town, Big Buddha.",
        "attractions_zh": "皮皮岛、攀牙湾、普吉老镇、普吉大佛。",
        "lodging_en": "Kata and Karon for families; Patong is lively and loud.",
        "lodging_zh": "亲子家庭推荐卡塔、卡伦海滩；芭东海滩热闹但较吵。",
        "transport_en": "Hotel transfers or Grab; speedboats for the islands (check the operator's licence).",
        "transport_zh": "酒店接送或 Grab 打车；出海请选择持证船公司。",
        "health_safety_en": "Red flags on beaches from May to October mean no swimming.",
        "health_safety_zh": "5 至 10 月海滩插红旗时禁止下水。",
        "tips_en": "November to April is the dry season; prices peak at Chinese New Year.",
        "tips_zh": "11 月至次年 4 月为旱季；春节期间价格最高。",
        "visa": ("none", 30, ["passport"], "Mutual visa exemption: up to 30 days per entry.",
                 "中泰互免签证：每次入境停留不超过 30 天。"),
    },
    ("FR", "Paris"): {
        "kind": "city", "iata_codes": ["CDG", "ORY"], "title_en": "Paris", "title_zh": "巴黎", "tags": ["欧洲", "艺术", "蜜月"],
        "overview_en": "Museums, cafés and grand avenues; combine with the Loire valley or Normandy.",
        "overview_zh": "博物馆、咖啡馆与林荫大道；可搭配卢瓦尔河谷或诺曼底。",
        "attractions_en": "Louvre, Orsay, Eiffel Tower, Montmartre, Versailles.",
        "attractions_zh": "卢浮宫、奥赛博物馆、埃菲尔铁塔、蒙马特高地、凡尔赛宫。",
        "lodging_en": "Saint-Germain and the Marais; air conditioning is not a given.",
        "lodging_zh": "推荐圣日耳曼、玛黑区；并非所有酒店都有空调。",
        "transport_en": "Metro and RER; RER B from Charles de Gaulle.",
        "transport_zh": "地铁和 RER 快线；戴高乐机场乘 RER B 进城。",
        "health_safety_en": "Pickpockets on Metro line 1 and around the Eiffel Tower.",
        "health_safety_zh": "地铁 1 号线及铁塔周边小偷较多。",
        "tips_en": "Book Louvre time slots online; museums close one day a week.",
        "tips_zh": "卢浮宫需网上预约时段；各博物馆每周有一天闭馆。",
        "visa": ("visa", 90, ["passport", "photos", "form", "assets", "employment", "household"],
                 "Schengen visa at the French visa centre; fingerprints in person.",
                 "在法国签证中心递交申根签证，须本人录指纹。"),
    },
    ("MV", ""): {
        "kind": "country", "iata_codes": ["MLE"], "title_en": "Maldives", "title_zh": "马尔代夫", "tags": ["海岛", "蜜月"],
        "overview_en": "One resort per island; transfers by speedboat or seaplane decide the budget.",
        "overview_zh": "一岛一酒店；快艇或水上飞机的接驳方式决定预算。",
        "lodging_en": "Water villas for honeymooners; beach villas for families with small children.",
        "lodging_zh": "蜜月推荐水屋；带小孩的家庭推荐沙屋。",
        "transport_en": "Seaplanes fly in daylight only: late arrivals stay a night in Malé.",
        "transport_zh": "水上飞机只在白天飞行：晚到的航班需在马累住一晚。",
        "tips_en": "Ask for the all-inclusive plan: resort prices are high.",
        "tips_zh": "建议选择全包套餐，岛上消费较高。",
        "visa": ("on_arrival", 30, ["passport"], "Free 30-day visa on arrival with a confirmed resort booking.",
                 "持酒店确认单可免费落地签，停留 30 天。"),
    },
    ("SG", "Singapore"): {
        "kind": "city", "iata_codes": ["SIN"], "title_en": "Singapore", "title_zh": "新加坡", "tags": ["城市", "亲子"],
        "overview_en": "Compact, clean and family-friendly; a good first trip abroad.",
        "overview_zh": "小而整洁，适合亲子，是首次出境游的好选择。",
        "attractions_en": "Gardens by the Bay, Sentosa, Universal Studios, the zoo and night safari.",
        "attractions_zh": "滨海湾花园、圣淘沙、环球影城、动物园与夜间动物园。",
        "transport_en": "MRT from the airport; taxis are metered.",
        "transport_zh": "机场可乘地铁；出租车打表计价。",
        "health_safety_en": "Strict laws: no chewing gum, fines for littering.",
        "health_safety_zh": "法律严格：禁止口香糖，乱扔垃圾会被罚款。",
        "visa": ("none", 30, ["passport"], "Mutual visa exemption: up to 30 days.", "中新互免签证：停留不超过 30 天。"),
    },
    ("AU", "Sydney"): {
        "kind": "city", "iata_codes": ["SYD"], "title_en": "Sydney", "title_zh": "悉尼", "tags": ["城市", "自然"],
        "overview_en": "Harbour city; combine with the Blue Mountains, Melbourne or the Great Barrier Reef.",
        "overview_zh": "海港城市；可搭配蓝山、墨尔本或大堡礁。",
        "attractions_en": "Opera House, Harbour Bridge climb, Bondi to Coogee walk, Blue Mountains.",
        "attractions_zh": "悉尼歌剧院、攀爬海港大桥、邦迪至库吉海滨步道、蓝山。",
        "transport_en": "Opal card or contactless bank card on trains, buses and ferries.",
        "transport_zh": "火车、巴士、渡轮可用 Opal 卡或银行卡闪付。",
        "health_safety_en": "Strong sun: swim between the red and yellow flags.",
        "health_safety_zh": "紫外线强；请在红黄旗之间游泳。",
        "tips_en": "Seasons are reversed: December is summer.",
        "tips_zh": "南北半球季节相反：12 月是夏季。",
        "visa": ("visa", 90, ["passport", "photos", "assets", "employment"],
                 "Visitor visa (subclass 600) applied online; allow 3 weeks.",
                 "在线申请访客签证（600 类），请预留 3 周。"),
    },
    ("IT", "Rome"): {
        "kind": "city", "iata_codes": ["FCO"], "title_en": "Rome", "title_zh": "罗马", "tags": ["欧洲", "历史"],
        "overview_en": "Ancient and baroque Rome; usually paired with Florence and Venice.",
        "overview_zh": "古罗马与巴洛克风情；通常与佛罗伦萨、威尼斯连游。",
        "attractions_en": "Colosseum, Vatican Museums, Pantheon, Trevi Fountain.",
        "attractions_zh": "斗兽场、梵蒂冈博物馆、万神殿、许愿池。",
        "transport_en": "Leonardo Express from Fiumicino; high-speed trains to Florence in 90 minutes.",
        "transport_zh": "菲乌米奇诺机场乘 Leonardo 快线；高铁 90 分钟到佛罗伦萨。",
        "visa": ("visa", 90, ["passport", "photos", "form", "assets", "employment"],
                 "Schengen visa at the Italian visa centre.", "在意大利签证中心递交申根签证。"),
    },
    ("NZ", "Queenstown"): {
        "kind": "city", "iata_codes": ["ZQN"], "title_en": "Queenstown", "title_zh": "皇后镇", "tags": ["自然", "自驾"],
        "overview_en": "Lakes and mountains; base for Milford Sound and adventure sports.",
        "overview_zh": "湖光山色；前往米尔福德峡湾和极限运动的大本营。",
        "transport_en": "Self-drive is usual; roads are narrow and drive on the left.",
        "transport_zh": "以自驾为主；道路狭窄，靠左行驶。",
        "visa": ("visa", 90, ["passport", "photos", "assets", "employment"],
                 "Visitor visa applied online.", "在线申请访客签证。"),
    },
    ("TR", "Istanbul"): {
        "kind": "city", "iata_codes": ["IST", "SAW"], "title_en": "Istanbul", "title_zh": "伊斯坦布尔", "tags": ["历史", "美食"],
        "overview_en": "Where Europe meets Asia; pair with Cappadocia's balloons.",
        "overview_zh": "欧亚交汇之城；可搭配卡帕多奇亚热气球。",
        "attractions_en": "Hagia Sophia, Topkapi Palace, Grand Bazaar, a Bosphorus cruise.",
        "attractions_zh": "圣索菲亚大教堂、托普卡帕宫、大巴扎、博斯普鲁斯海峡游船。",
        "visa": ("e_visa", 30, ["passport"], "E-visa online before departure.", "出发前在线申请电子签证。"),
    },
}
SHARED = {
    ("KR", "Seoul"): {
        "kind": "city", "iata_codes": ["ICN", "GMP"], "title_en": "Seoul", "title_zh": "首尔", "tags": ["城市", "购物"],
        "overview_en": "Palaces, shopping and food; Jeju island is a short flight away.",
        "overview_zh": "宫殿、购物与美食；飞济州岛很近。",
        "attractions_en": "Gyeongbokgung, Bukchon Hanok Village, Myeongdong, N Seoul Tower.",
        "attractions_zh": "景福宫、北村韩屋村、明洞、N 首尔塔。",
        "transport_en": "T-money card for subway and buses; AREX train from Incheon.",
        "transport_zh": "地铁、公交用 T-money 卡；仁川机场乘 AREX 机场快线。",
        "visa": ("visa", 90, ["passport", "photos", "form", "employment"],
                 "Tourist visa (C-3) through an accredited agency.", "旅游签证（C-3）经指定旅行社办理。"),
    },
    ("TH", "Bangkok"): {
        "kind": "city", "iata_codes": ["BKK", "DMK"], "title_en": "Bangkok", "title_zh": "曼谷", "tags": ["城市", "美食"],
        "overview_en": "Temples, markets and street food; gateway to Thailand's islands.",
        "overview_zh": "寺庙、市场与街头美食；前往泰国各海岛的门户。",
        "attractions_en": "Grand Palace, Wat Arun, Chatuchak weekend market, floating markets.",
        "attractions_zh": "大皇宫、郑王庙、乍都乍周末市场、水上市场。",
        "transport_en": "BTS Skytrain and MRT; Airport Rail Link from Suvarnabhumi.",
        "transport_zh": "BTS 轻轨和 MRT 地铁；素万那普机场乘机场快线。",
        "visa": ("none", 30, ["passport"], "Mutual visa exemption: up to 30 days per entry.",
                 "中泰互免签证：每次入境停留不超过 30 天。"),
    },
    ("AE", "Dubai"): {
        "kind": "city", "iata_codes": ["DXB"], "title_en": "Dubai", "title_zh": "迪拜", "tags": ["城市", "购物", "沙漠"],
        "overview_en": "Skyscrapers, malls and desert safaris; a stopover on the way to Europe.",
        "overview_zh": "摩天楼、购物中心与沙漠冲沙；前往欧洲途中的经停地。",
        "health_safety_en": "Summer midday heat above 40 °C: plan outdoor visits for mornings.",
        "health_safety_zh": "夏季正午气温超过 40 °C，户外活动请安排在上午。",
        "visa": ("on_arrival", 30, ["passport"], "Free 30-day visa on arrival.", "免费落地签，停留 30 天。"),
    },
}


def _visa(actor, article, visa, *, checked_on):
    requirement, days, documents, text_en, text_zh = visa
    return services.visa_note_save(actor=actor, article=article, nationality="CN", data={
        "requirement": requirement, "stay_days": days, "documents": documents, "text_en": text_en,
        "text_zh": text_zh, "checked_on": checked_on})


def _save(actor, country, city, content, *, checked_on):
    data = {k: v for k, v in content.items() if k != "visa"}
    data.update(country=country, city=city)
    article = services.article_save(actor=actor, article=None, data=data)
    if content.get("visa"):
        _visa(actor, article, content["visa"], checked_on=checked_on)
    return article


def top_places(limit: int = 6) -> list[tuple[str, str]]:
    """The (country, city) of the agency's most sold trip destinations, most first, that have demo text."""
    from crm.trips.models import Trip

    counts: Counter = Counter()
    for row in Trip.objects.exclude(destination="").values("destination").annotate(n=Count("id")):
        place = reference.find_place(row["destination"])
        key = (place["country"], place["city"])
        if key not in CONTENT and (place["country"], "") in CONTENT:
            key = (place["country"], "")
        if key in CONTENT:
            counts[key] += row["n"]
    return [key for key, _n in counts.most_common(limit)]


def seed_destinations(agency, *, limit: int = 6) -> dict:
    """The agency's demo articles (when it has none)."""
    with tenant_context(agency):
        if Article.objects.exists():
            return {"articles": 0}
        author = (User.objects.filter(role=Role.MANAGER).order_by("id").first()
                  or User.objects.filter(role=Role.ADMIN).order_by("id").first())
        places = top_places(limit) or list(CONTENT)[:limit]
        today = timezone.localdate()
        made = []
        for n, (country, city) in enumerate(places):
            # The last one's visa note was checked long ago: the stale flag shows.
            checked = today - timedelta(days=STALE_AFTER_DAYS + 40) if n == len(places) - 1 else today - timedelta(days=10 * n)
            made.append(_save(author, country, city, CONTENT[(country, city)], checked_on=checked))
        return {"articles": len(made), "stale": VisaNote.objects.filter(checked_on__lt=today - timedelta(days=STALE_AFTER_DAYS)).count()}


def seed_shared(operator=None) -> dict:
    """Three articles in the operators' shared base (when it has none)."""
    with schema_context(get_public_schema_name()):
        if Article.objects.exists():
            return {"shared": 0}
        today = timezone.localdate()
        for (country, city), content in SHARED.items():
            _save(operator, country, city, content, checked_on=today - timedelta(days=30))
        return {"shared": len(SHARED)}
