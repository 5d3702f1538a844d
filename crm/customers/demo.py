"""Realistic demo customers: Chinese travelers with passport spellings, a few foreigners, corporate
accounts with their employees, documents, preferences and two years of contacts.

Used by ``seed_demo`` (a few thousand per demo agency) and by ``bench/customers.py`` (100,000).
Rows are written with ``bulk_create`` but normalised exactly as the services do it (E.164 phones,
lower-case e-mails, ``search_text`` by :func:`crm.customers.snapshot.customer_search_text` as the services build it,
documents encrypted and hashed as :func:`crm.customers.services.document_add` does), so the data behaves
like data typed in through the pages. Names, numbers and links are deterministic for a seed;
dates are relative to today so the demo always looks current.
"""
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from accounts.models import User
from accounts.roles import Role

from . import crypto
from .models import (Address, ChangeLog, Contact, Customer, Email, Employment, FamilyDate, LoyaltyMembership, Phone,
                     Preferences, TravelDocument)
from .normalize import email_normal, phone_e164
from .snapshot import CREATED, created_text, customer_search_text

# --- names ------------------------------------------------------------------------------------

# Surname, passport spelling, weight (roughly the share of the population, in %).
SURNAMES = [
    ("王", "WANG", 7.1), ("李", "LI", 7.0), ("张", "ZHANG", 6.7), ("刘", "LIU", 5.4), ("陈", "CHEN", 4.6),
    ("杨", "YANG", 3.1), ("黄", "HUANG", 2.3), ("赵", "ZHAO", 2.2), ("吴", "WU", 2.0), ("周", "ZHOU", 1.9),
    ("徐", "XU", 1.5), ("孙", "SUN", 1.5), ("马", "MA", 1.4), ("朱", "ZHU", 1.3), ("胡", "HU", 1.3),
    ("郭", "GUO", 1.2), ("何", "HE", 1.2), ("高", "GAO", 1.1), ("林", "LIN", 1.1), ("罗", "LUO", 1.0),
    ("郑", "ZHENG", 1.0), ("梁", "LIANG", 0.9), ("谢", "XIE", 0.8), ("宋", "SONG", 0.8), ("唐", "TANG", 0.8),
    ("许", "XU", 0.7), ("韩", "HAN", 0.7), ("冯", "FENG", 0.7), ("邓", "DENG", 0.7), ("曹", "CAO", 0.7),
    ("彭", "PENG", 0.6), ("曾", "ZENG", 0.6), ("肖", "XIAO", 0.6), ("田", "TIAN", 0.6), ("董", "DONG", 0.5),
    ("袁", "YUAN", 0.5), ("潘", "PAN", 0.5), ("于", "YU", 0.5), ("蒋", "JIANG", 0.5), ("蔡", "CAI", 0.5),
    ("余", "YU", 0.5), ("杜", "DU", 0.5), ("叶", "YE", 0.4), ("程", "CHENG", 0.4), ("苏", "SU", 0.4),
    ("魏", "WEI", 0.4), ("吕", "LV", 0.4), ("丁", "DING", 0.4), ("任", "REN", 0.4), ("沈", "SHEN", 0.4),
    ("姚", "YAO", 0.3), ("卢", "LU", 0.3), ("姜", "JIANG", 0.3), ("崔", "CUI", 0.3), ("钟", "ZHONG", 0.3),
    ("谭", "TAN", 0.3), ("陆", "LU", 0.3), ("汪", "WANG", 0.3), ("范", "FAN", 0.3), ("金", "JIN", 0.3),
    ("石", "SHI", 0.3), ("廖", "LIAO", 0.3), ("贾", "JIA", 0.3), ("夏", "XIA", 0.3), ("韦", "WEI", 0.3),
    ("付", "FU", 0.3), ("方", "FANG", 0.3), ("白", "BAI", 0.2), ("邹", "ZOU", 0.2), ("孟", "MENG", 0.2),
    ("熊", "XIONG", 0.2), ("秦", "QIN", 0.2), ("邱", "QIU", 0.2), ("江", "JIANG", 0.2), ("尹", "YIN", 0.2),
    ("薛", "XUE", 0.2), ("闫", "YAN", 0.2), ("段", "DUAN", 0.2), ("雷", "LEI", 0.2), ("侯", "HOU", 0.2),
    ("龙", "LONG", 0.2), ("史", "SHI", 0.2), ("陶", "TAO", 0.2), ("黎", "LI", 0.2), ("贺", "HE", 0.2),
    ("顾", "GU", 0.2), ("毛", "MAO", 0.2), ("郝", "HAO", 0.2), ("龚", "GONG", 0.2), ("邵", "SHAO", 0.2),
    ("万", "WAN", 0.2), ("钱", "QIAN", 0.2), ("严", "YAN", 0.2), ("武", "WU", 0.2), ("戴", "DAI", 0.2),
    ("莫", "MO", 0.1), ("孔", "KONG", 0.1), ("向", "XIANG", 0.1), ("汤", "TANG", 0.1),
    ("欧阳", "OUYANG", 0.05), ("司马", "SIMA", 0.02), ("诸葛", "ZHUGE", 0.01), ("上官", "SHANGGUAN", 0.01),
]
# Given-name characters and their pinyin; none starts with a vowel, so joined spellings read unambiguously.
GIVEN_MALE = dict(zip(
    "伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙林建国志文博峰晨阳东亮海子睿轩成天嘉泽宏振德瑞",
    "wei qiang lei jun yong jie tao ming chao gang ping hui peng hua fei xin bo bin yu hao kai jian jun fan shuai xu "
    "ning long lin jian guo zhi wen bo feng chen yang dong liang hai zi rui xuan cheng tian jia ze hong zhen de rui".split()))
GIVEN_FEMALE = dict(zip(
    "芳娜敏静丽艳娟霞秀玲婷雪慧颖琳欣怡佳雨梦思晓倩洁萍红燕莉晶璐瑶琪悦诗涵月楠蕾薇彤丹小",
    "fang na min jing li yan juan xia xiu ling ting xue hui ying lin xin yi jia yu meng si xiao qian jie ping hong "
    "yan li jing lu yao qi yue shi han yue nan lei wei tong dan xiao".split()))
FOREIGN_MALE = ["John", "Michael", "David", "Thomas", "Peter", "James", "Lucas", "Daniel", "Mark", "Oliver",
                "Kenji", "Hiroshi", "Minjun", "Stefan", "Pierre", "Luca", "Ahmed", "Raj"]
FOREIGN_FEMALE = ["Sarah", "Emma", "Anna", "Laura", "Olivia", "Sophie", "Maria", "Julia", "Emily", "Claire",
                  "Yuki", "Sakura", "Jiwoo", "Ingrid", "Chloe", "Giulia", "Priya", "Hannah"]
FOREIGN_SURNAMES = {  # nationality → surnames
    "US": ["Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson", "Anderson", "Taylor"],
    "GB": ["Clarke", "Walker", "Wright", "Hughes", "Evans", "O'Brien", "Turner"],
    "DE": ["Mueller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner"],
    "FR": ["Martin", "Bernard", "Dubois", "Laurent", "Moreau"],
    "AU": ["Kelly", "Murphy", "Campbell", "Mitchell"],
    "JP": ["Tanaka", "Suzuki", "Sato", "Takahashi", "Watanabe"],
    "KR": ["Kim", "Park", "Choi", "Jung"],
    "SG": ["Tan", "Lim", "Ng", "Goh"],
    "IT": ["Rossi", "Bianchi", "Romano"],
    "IN": ["Sharma", "Patel", "Gupta"],
}
FOREIGN_PHONE = {"US": "+1 415 2## ####", "GB": "+44 7911 ######", "DE": "+49 151 ########", "FR": "+33 6 ## ## ## ##",
                 "AU": "+61 4## ### ###", "JP": "+81 90 #### ####", "KR": "+82 10 #### ####", "SG": "+65 9### ####",
                 "IT": "+39 347 ### ####", "IN": "+91 98### #####"}

# Mobile prefixes of the three carriers.
MOBILE_PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
                   "155", "156", "157", "158", "159", "166", "176", "177", "180", "181", "182", "183", "185",
                   "186", "187", "188", "189", "191", "199"]
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "gmail.com", "outlook.com",
                 "icloud.com", "hotmail.com", "yeah.net"]

# City, phone area code, ID-card region code, districts with a street each, postcode.
CITIES = [
    ("北京", "10", "110105", [("朝阳区", "建国路"), ("海淀区", "中关村大街"), ("东城区", "东直门内大街")], "100020"),
    ("上海", "21", "310115", [("浦东新区", "世纪大道"), ("静安区", "南京西路"), ("徐汇区", "漕溪北路")], "200120"),
    ("广州", "20", "440106", [("天河区", "天河路"), ("越秀区", "环市东路")], "510620"),
    ("深圳", "755", "440305", [("南山区", "科技园南路"), ("福田区", "深南大道")], "518057"),
    ("成都", "28", "510107", [("武侯区", "人民南路"), ("锦江区", "红星路")], "610041"),
    ("杭州", "571", "330106", [("西湖区", "文三路"), ("滨江区", "江南大道")], "310012"),
    ("南京", "25", "320106", [("鼓楼区", "中山路"), ("建邺区", "江东中路")], "210008"),
    ("武汉", "27", "420106", [("武昌区", "中南路"), ("江汉区", "建设大道")], "430071"),
    ("西安", "29", "610113", [("雁塔区", "高新路")], "710075"),
    ("厦门", "592", "350203", [("思明区", "湖滨南路")], "361004"),
]

# --- companies -------------------------------------------------------------------------------

COMPANY_PREFIXES = [
    ("华信", "huaxin"), ("东方", "dongfang"), ("鼎盛", "dingsheng"), ("蓝海", "lanhai"), ("星辰", "xingchen"),
    ("锦程", "jincheng"), ("博远", "boyuan"), ("恒通", "hengtong"), ("天合", "tianhe"), ("华夏", "huaxia"),
    ("新元", "xinyuan"), ("远景", "yuanjing"), ("瑞康", "ruikang"), ("长风", "changfeng"), ("金桥", "jinqiao"),
    ("海港", "haigang"), ("嘉禾", "jiahe"), ("宏图", "hongtu"), ("云帆", "yunfan"), ("盛世", "shengshi"),
    ("中科", "zhongke"), ("北辰", "beichen"), ("安信", "anxin"), ("永泰", "yongtai"), ("联创", "lianchuang"),
    ("明德", "mingde"), ("同创", "tongchuang"), ("九州", "jiuzhou"), ("启航", "qihang"), ("万象", "wanxiang"),
    ("银河", "yinhe"), ("卓越", "zhuoyue"), ("富春", "fuchun"), ("南山", "nanshan"), ("国瑞", "guorui"),
    ("天宇", "tianyu"), ("鸿运", "hongyun"), ("华腾", "huateng"), ("信达", "xinda"), ("新锐", "xinrui"),
    ("智源", "zhiyuan"), ("泰和", "taihe"), ("盈科", "yingke"), ("华晨", "huachen"), ("朗润", "langrun"),
    ("青松", "qingsong"), ("浩瀚", "haohan"), ("德润", "derun"), ("金鹰", "jinying"), ("凯晟", "kaisheng"),
    ("翰林", "hanlin"), ("宝成", "baocheng"), ("天润", "tianrun"), ("华章", "huazhang"), ("易达", "yida"),
    ("环球", "huanqiu"), ("思远", "siyuan"), ("东航", "donghang"), ("海川", "haichuan"), ("中盛", "zhongsheng"),
]
# Trade in the name, its domain part, the industry shown on the account.
COMPANY_TRADES = [
    ("科技", "tech", "信息技术"), ("网络科技", "net", "互联网"), ("医药", "pharma", "医药"),
    ("生物医药", "bio", "生物医药"), ("物流", "logistics", "物流"), ("航空物流", "airfreight", "航空物流"),
    ("投资管理", "capital", "金融"), ("证券", "securities", "金融"), ("能源", "energy", "能源"),
    ("汽车零部件", "auto", "汽车"), ("建筑设计", "design", "建筑"), ("国际贸易", "trading", "贸易"),
    ("食品", "foods", "食品"), ("传媒", "media", "传媒"), ("电子", "electronics", "电子"),
    ("半导体", "semi", "半导体"), ("咨询", "consulting", "咨询"), ("会展服务", "expo", "会展"),
    ("机械", "machinery", "制造"), ("置业", "realty", "房地产"), ("教育科技", "edu", "教育"),
]
COMPANY_SUFFIXES = ["有限公司", "有限公司", "有限公司", "股份有限公司", "股份有限公司", "集团有限公司"]
FOREIGN_COMPANIES = [
    ("Nordlicht Engineering (Shanghai) Co., Ltd.", "nordlicht-eng.com", "制造"),
    ("Pacific Rim Consulting Ltd.", "pacrim-consulting.com", "咨询"),
    ("Alder & Finch LLP", "alderfinch.com", "法律"),
    ("Meridian Medical Devices (Suzhou) Co., Ltd.", "meridian-med.com", "医疗器械"),
    ("Bluewater Shipping Asia Pte. Ltd.", "bluewater-asia.com", "航运"),
]
DEPARTMENTS = ["销售部", "市场部", "研发部", "财务部", "人力资源部", "行政部", "采购部", "总经办", "法务部", "运营部",
               "技术部", "客户服务部"]
P_TITLES = {1: "助理", 2: "专员", 3: "工程师", 4: "高级工程师", 5: "主管", 6: "资深经理", 7: "专家", 8: "首席专家"}
M_TITLES = {1: "经理", 2: "经理", 3: "高级经理", 4: "总监", 5: "副总裁"}

# --- travel -----------------------------------------------------------------------------------

AIRLINES = ["CA", "MU", "CZ", "HU", "3U", "MF", "ZH", "FM", "HO", "CX", "SQ", "NH", "JL", "KE", "EK", "QR", "LH",
            "BA", "AF", "TG"]
AIRLINE_WEIGHTS = [10, 10, 9, 5, 3, 3, 3, 2, 2, 4, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1]
HOTEL_CHAINS = ["Marriott", "Hilton", "IHG", "Hyatt", "Accor", "Shangri-La", "锦江", "华住", "亚朵", "首旅如家"]
ROOM_TYPES = ["大床房", "双床房", "行政房", "套房", "家庭房", "无烟大床房"]
LOYALTY_TIERS = {"CA": ["普卡", "银卡", "金卡", "白金卡"], "MU": ["普卡", "银卡", "金卡", "白金卡"],
                 "CZ": ["普卡", "银卡", "金卡"], "CX": ["Green", "Silver", "Gold", "Diamond"],
                 "SQ": ["KrisFlyer", "Elite Silver", "Elite Gold"], "Marriott": ["Member", "Silver", "Gold", "Platinum"],
                 "Hilton": ["Member", "Silver", "Gold", "Diamond"], "IHG": ["Club", "Gold", "Platinum"]}
TAGS = ["VIP", "商务", "家庭游", "蜜月", "常旅客", "自由行", "跟团游", "留学", "老客户", "高端定制", "海岛", "邮轮",
        "滑雪", "亲子", "银发游"]
SOURCES = [(Customer.Source.WECHAT, 24), (Customer.Source.WALK_IN, 14), (Customer.Source.WEBSITE, 16),
           (Customer.Source.CALL_CENTER, 14), (Customer.Source.REFERRAL, 18), (Customer.Source.EVENT, 6),
           (Customer.Source.OTHER, 8)]
NOTES = ["喜欢靠窗座位，不吃辣。", "对海鲜过敏，订餐请注意。", "每年春节全家出游，偏好东南亚海岛。",
         "只接受直飞航班。", "护照即将到期，已提醒更新。", "常去日本滑雪，偏好二世谷。", "需要无障碍房间。",
         "喜欢深度游，不跟团。", "预算充足，注重服务体验。", "Prefers English-speaking guides."]
FAMILY_DATES = ["配偶生日", "结婚纪念日", "孩子生日", "父亲生日", "母亲生日"]
DESTINATIONS = ["日本", "泰国", "新加坡", "马尔代夫", "巴厘岛", "欧洲", "澳大利亚", "新西兰", "美国", "迪拜", "三亚", "云南",
                "西藏", "韩国", "土耳其", "埃及", "冰岛", "瑞士"]
CONTACTS = [  # channel, direction, summary ({d}: a destination)
    (Contact.Channel.CALL, Contact.Direction.INBOUND, "来电咨询{d}行程报价"),
    (Contact.Channel.CALL, Contact.Direction.INBOUND, "来电询问{d}签证办理时间"),
    (Contact.Channel.CALL, Contact.Direction.OUTBOUND, "回访：{d}行程体验满意"),
    (Contact.Channel.CALL, Contact.Direction.OUTBOUND, "致电确认{d}机票改期"),
    (Contact.Channel.EMAIL, Contact.Direction.OUTBOUND, "发送{d}行程方案及报价单"),
    (Contact.Channel.EMAIL, Contact.Direction.INBOUND, "客户邮件确认{d}酒店房型"),
    (Contact.Channel.EMAIL, Contact.Direction.OUTBOUND, "发送{d}签证材料清单"),
    (Contact.Channel.VISIT, Contact.Direction.INBOUND, "到店面谈{d}定制行程"),
    (Contact.Channel.VISIT, Contact.Direction.OUTBOUND, "上门拜访，介绍{d}新线路"),
    (Contact.Channel.MESSAGE, Contact.Direction.INBOUND, "微信咨询{d}自由行机酒套餐"),
    (Contact.Channel.MESSAGE, Contact.Direction.OUTBOUND, "微信发送{d}出行提醒"),
    (Contact.Channel.NOTE, Contact.Direction.INTERNAL, "客户有意向明年去{d}，预算待定"),
]
COMPLAINTS = ["投诉：航班延误未及时通知", "投诉：酒店房型与预订不符", "投诉：退款进度太慢", "投诉：导游服务态度差",
              "投诉：接机司机迟到一小时", "投诉：行程临时变更未告知"]
NEXT_STEPS = ["发送报价", "跟进签证材料", "确认付款", "预订酒店", "出票", "回访满意度"]


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs)
    return rng.choices(values, weights)[0]


@dataclass
class Person:
    """One generated individual, normalised as the services would store it."""

    name: str
    latin_surname: str
    latin_given: str
    gender: str
    birthday: date
    language: str
    nationality: str
    phones: list = field(default_factory=list)  # E.164
    emails: list = field(default_factory=list)  # lower case


class Generator:
    """Deterministic people, companies and numbers; never repeats a phone, e-mail or document."""

    def __init__(self, seed, *, region: str = "CN", foreign_share: float = 0.04,
                 taken_phones=(), taken_emails=()):
        self.rng = random.Random(seed)
        self.region = region
        self.foreign_share = foreign_share
        self.phones = set(taken_phones)
        self.emails = set(taken_emails)
        self.documents: set[tuple[str, str, str]] = set()  # (kind, country, number)
        self.company_names: set[str] = set()
        self._surnames = [(s, p) for s, p, _w in SURNAMES]
        self._surname_weights = [w for _s, _p, w in SURNAMES]
        self._given = {"M": list(GIVEN_MALE), "F": list(GIVEN_FEMALE)}

    # names and contact details
    def person(self, *, email_domain: str = "", email_share: float = 0.6) -> Person:
        rng = self.rng
        today = date.today()
        birthday = today - timedelta(days=rng.randint(18 * 365, 75 * 365))
        if rng.random() < self.foreign_share:
            nationality = rng.choice(list(FOREIGN_SURNAMES))
            gender = rng.choice("MF")
            given = rng.choice(FOREIGN_MALE if gender == "M" else FOREIGN_FEMALE)
            surname = rng.choice(FOREIGN_SURNAMES[nationality])
            person = Person(f"{given} {surname}", surname.upper(), given, gender, birthday, "en", nationality)
            person.phones.append(self.mobile(nationality) if rng.random() < 0.6 else self.mobile())
        else:
            surname, latin_surname = rng.choices(self._surnames, self._surname_weights)[0]
            gender = rng.choice("MF")
            pool = GIVEN_MALE if gender == "M" else GIVEN_FEMALE
            chars = rng.sample(self._given[gender], 1 if rng.random() < 0.3 else 2)
            given = "".join(chars)
            person = Person(surname + given, latin_surname, "".join(pool[c] for c in chars).capitalize(), gender,
                            birthday, "zh-hans", "CN")
            person.phones.append(self.mobile())
        if rng.random() < 0.08:
            person.phones.append(self.mobile())
        if email_domain or rng.random() < email_share:
            if address := self.email(person, email_domain):
                person.emails.append(address)
        return person

    def _digits(self, pattern: str) -> str:
        return "".join(str(self.rng.randrange(10)) if ch == "#" else ch for ch in pattern)

    def mobile(self, country: str = "CN") -> str:
        """A new, valid mobile number in E.164 (read through phone_e164 like any typed number)."""
        pattern = f"{self.rng.choice(MOBILE_PREFIXES)} #### ####" if country == "CN" else FOREIGN_PHONE[country]
        return self._new_number([pattern])

    def landline(self, area: str) -> str | None:
        """A switchboard number: eight digits after the area code (seven in a few cities)."""
        try:
            return self._new_number([f"0{area} #### ####", f"0{area} ### ####"])
        except RuntimeError:
            return None

    def _new_number(self, patterns: list[str]) -> str:
        for _attempt in range(20):
            for pattern in patterns:
                try:
                    number = phone_e164(self._digits(pattern), self.region)
                except ValidationError:
                    continue
                if number not in self.phones:
                    self.phones.add(number)
                    return number
        raise RuntimeError(f"Could not find a free phone number like {patterns[0]}")

    def email(self, person: Person, domain: str = "") -> str | None:
        rng = self.rng
        surname = person.latin_surname.lower().replace("'", "")
        given = person.latin_given.lower().replace(" ", "")
        for attempt in range(8):
            if domain:
                local = f"{given}.{surname}" + (str(attempt + 1) if attempt else "")
            else:
                style = rng.randrange(4)
                if style == 0 and person.nationality == "CN":
                    local, domain_used = str(rng.randint(10**6, 10**10)), "qq.com"
                    candidate = f"{local}@{domain_used}"
                    if candidate not in self.emails:
                        self.emails.add(candidate)
                        return email_normal(candidate)
                    continue
                local = [f"{given}.{surname}", f"{surname}{given}", f"{given}_{surname}{person.birthday.year % 100:02d}",
                         f"{surname}.{given}{rng.randint(1, 999)}"][style]
            candidate = email_normal(f"{local}@{domain or rng.choice(EMAIL_DOMAINS)}")
            if candidate not in self.emails:
                self.emails.add(candidate)
                return candidate
        return None

    def phone_format(self, e164: str) -> str:
        """The same number as people type it: 138 1234 5678, +86-138…, 0086…, 13812345678."""
        if not e164.startswith("+86"):
            return e164 if self.rng.random() < 0.5 else "00" + e164[1:]
        national = e164[3:]
        return self.rng.choice([
            national, f"{national[:3]} {national[3:7]} {national[7:]}", f"+86 {national[:3]}-{national[3:7]}-{national[7:]}",
            f"0086{national}", e164, f"({national[:3]}) {national[3:7]}-{national[7:]}",
        ])

    # companies
    def company(self) -> tuple[str, str, str]:
        """(name, e-mail domain, industry)."""
        rng = self.rng
        for _attempt in range(200):
            if rng.random() < 0.04:
                name, domain, industry = rng.choice(FOREIGN_COMPANIES)
            else:
                (prefix, pinyin), (trade, slug, industry) = rng.choice(COMPANY_PREFIXES), rng.choice(COMPANY_TRADES)
                city = rng.choice(CITIES)[0]
                name = rng.choice([f"{prefix}{trade}{rng.choice(COMPANY_SUFFIXES)}",
                                   f"{city}{prefix}{trade}{rng.choice(COMPANY_SUFFIXES)}",
                                   f"{prefix}{trade}({city}){rng.choice(COMPANY_SUFFIXES)}"])
                domain = f"{pinyin}-{slug}.com"
            if name not in self.company_names:
                self.company_names.add(name)
                return name, domain, industry
        # Past ~25,000 companies the name space runs dry: number the branches.
        name = f"{name[:-4]}{len(self.company_names)}分公司"
        self.company_names.add(name)
        return name, domain, industry

    # documents
    def document(self, kind: str, country: str, person: Person) -> tuple[str, str, str] | None:
        """(kind, issuing country, number) not used before, or None."""
        rng = self.rng
        for _attempt in range(10):
            if kind == TravelDocument.Kind.NATIONAL_ID:
                body = (rng.choice(CITIES)[2] + person.birthday.strftime("%Y%m%d")
                        + f"{rng.randint(0, 49) * 2 + (1 if person.gender == 'M' else 0):02d}{rng.randint(0, 9)}")
                number = body + _id_check_digit(body)
            elif kind == TravelDocument.Kind.HK_MACAU_PERMIT:
                number = "C" + "".join(rng.choices("0123456789", k=8))
            elif kind == TravelDocument.Kind.VISA:
                number = rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") + "".join(rng.choices("0123456789", k=8))
            elif country == "CN":
                number = rng.choice(["E", "EA", "EB", "EC"])
                number += "".join(rng.choices("0123456789", k=9 - len(number)))
            else:
                number = rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") + "".join(rng.choices("0123456789", k=8))
            key = (kind, country, number)
            if key not in self.documents:
                self.documents.add(key)
                return key
        return None


def _id_check_digit(body: str) -> str:
    """The 18th character of a resident ID number (ISO 7064 MOD 11-2)."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]


# --- writing an agency's customers ------------------------------------------------------------

CHUNK = 5000


def seed_customers(agency, *, people: int = 3000, companies: int = 40, rng_seed: int = 20240601,
                   foreign_share: float = 0.04, progress=None) -> dict:
    """Fill ``agency`` with ``companies`` corporate accounts and ``people`` individuals.

    Many of the people work for one of the companies (5–60 each, one to three of them bookers;
    at most 70 % of the people).
    Numbers and addresses already on file are skipped, so calling it again adds more customers.
    ``progress(done, total)`` is called after each chunk. Returns the number of rows per model.
    """
    with tenant_context(agency):
        staff = list(User.objects.filter(is_active=True, is_operator=False).order_by("pk"))
        owners = [u for u in staff if u.role in (Role.SALES, Role.MANAGER)] or staff
        gen = Generator(rng_seed, region=agency.default_region, foreign_share=foreign_share,
                        taken_phones=Phone.objects.values_list("number", flat=True),
                        taken_emails=Email.objects.values_list("address", flat=True))
        gen.company_names.update(Customer.objects.filter(kind=Customer.Kind.COMPANY).values_list("name", flat=True))
        writer = _Writer(gen, staff, owners)
        with transaction.atomic():
            writer.companies(companies, people)
        for start in range(0, people, CHUNK):
            with transaction.atomic():
                writer.people(start, min(start + CHUNK, people))
            if progress:
                progress(min(start + CHUNK, people), people)
        return writer.counts


class _Writer:
    def __init__(self, gen: Generator, staff: list, owners: list):
        self.gen, self.rng, self.staff, self.owners = gen, gen.rng, staff, owners
        self.now = timezone.now()
        self.counts: dict[str, int] = {}
        self.company_rows: list[tuple[Customer, str]] = []  # (company, e-mail domain)
        self.employer: dict[int, int] = {}  # person index → position in company_rows
        self.bookers: set[int] = set()
        self.document_hashes = set(TravelDocument.objects.values_list("number_hash", flat=True))

    def _save(self, model, rows: list) -> list:
        created = model.objects.bulk_create(rows, batch_size=2000)
        self.counts[model.__name__] = self.counts.get(model.__name__, 0) + len(created)
        return created

    def _log_created(self, customers) -> None:
        """Each new customer's change-log entry, as the services write one (``snapshot.changes``)."""
        self._save(ChangeLog, [ChangeLog(customer=c, via=ChangeLog.Via.IMPORT, field=CREATED,
                                         new=created_text({"kind": c.kind, "name": c.name}), at=c.created_at)
                               for c in customers])

    def _owner(self):
        return self.rng.choice(self.owners) if self.owners and self.rng.random() < 0.92 else None

    def _created_at(self):
        return self.now - timedelta(days=self.rng.randint(0, 6 * 365), seconds=self.rng.randint(0, 86399))

    def companies(self, count: int, people: int) -> None:
        """The corporate accounts, and which generated people (by index) will work where."""
        rng = self.rng
        rows, extras = [], []
        for _ in range(count):
            name, domain, industry = self.gen.company()
            email = f"travel@{domain}"
            if email in self.gen.emails:  # two branches of one group share a domain: the first has the address
                email = ""
            else:
                self.gen.emails.add(email)
            rows.append(Customer(kind=Customer.Kind.COMPANY, name=name, industry=industry, owner=self._owner(),
                                 source=Customer.Source.CORPORATE, created_at=self._created_at(),
                                 tags=["商务"] + (["VIP"] if rng.random() < 0.2 else []),
                                 search_text=customer_search_text(name=name, emails=[email])))
            extras.append((domain, email, self.gen.landline(rng.choice(CITIES)[1])))
        rows = self._save(Customer, rows)
        phones, emails = [], []
        for company, (domain, email, number) in zip(rows, extras):
            self.company_rows.append((company, domain))
            if number:
                phones.append(Phone(customer=company, number=number, label="总机"))
            if email:
                emails.append(Email(customer=company, address=email, label="差旅"))
        self._save(Phone, phones)
        self._save(Email, emails)
        self._log_created(rows)
        if not rows or not people:
            return
        sizes = [rng.randint(5, 60) for _ in rows]
        total, cap = sum(sizes), int(people * 0.7)
        if total > cap:  # few people for many companies: keep some private customers all the same
            sizes = [max(min(5, s), s * cap // total) for s in sizes]
        positions = rng.sample(range(people), min(people, sum(sizes)))
        it = iter(positions)
        for company_pos, size in enumerate(sizes):
            members = [p for p in (next(it, None) for _ in range(size)) if p is not None]
            self.employer.update((p, company_pos) for p in members)
            self.bookers.update(members[:rng.randint(1, 3)] if len(members) > 3 else members[:1])

    def people(self, start: int, stop: int) -> None:
        rng, gen = self.rng, self.gen
        generated, customers = [], []
        for index in range(start, stop):
            employer = self.employer.get(index)
            company, domain = self.company_rows[employer] if employer is not None else (None, "")
            person = gen.person(email_domain=domain if rng.random() < 0.85 else "")
            tags = set(rng.sample(TAGS, rng.choice([0, 0, 1, 1, 2, 3])))
            if rng.random() < 0.08:
                tags.add("VIP")
            if company is not None:
                tags.add("商务")
            companies = [company.name] if company is not None else []
            customers.append(Customer(
                kind=Customer.Kind.PERSON, name=person.name, latin_surname=person.latin_surname,
                latin_given=person.latin_given, gender=person.gender, birthday=person.birthday,
                language=person.language, tags=sorted(tags), created_at=self._created_at(),
                source=Customer.Source.CORPORATE if company is not None else _weighted(rng, SOURCES),
                owner=company.owner if company is not None and rng.random() < 0.8 else self._owner(),
                notes=rng.choice(NOTES) if rng.random() < 0.1 else "",
                search_text=customer_search_text(name=person.name, latin_surname=person.latin_surname,
                                                 latin_given=person.latin_given, emails=person.emails,
                                                 companies=companies)))
            generated.append((person, company))
        customers = self._save(Customer, customers)
        self._contact_details(customers, generated)
        self._employments(customers, generated, start)
        self._travel(customers, generated)
        self._documents(customers, generated)
        self._contacts(customers, generated)
        self._log_created(customers)

    def _contact_details(self, customers, generated) -> None:
        rng = self.rng
        phones, emails, addresses, family = [], [], [], []
        for customer, (person, company) in zip(customers, generated):
            phones += [Phone(customer=customer, number=n, label="手机" if i == 0 else "备用") for i, n in enumerate(person.phones)]
            emails += [Email(customer=customer, address=a, label="工作" if company else "个人") for a in person.emails]
            if rng.random() < 0.3:
                city, _area, _region, districts, postcode = rng.choice(CITIES)
                district, street = rng.choice(districts)
                addresses.append(Address(customer=customer, label="家庭", city=city, postcode=postcode, country="CN",
                                         line=f"{district}{street}{rng.randint(1, 999)}号{rng.randint(1, 30)}栋"
                                              f"{rng.randint(1, 32)}{rng.randint(1, 6):02d}室"))
            if rng.random() < 0.15:
                for label in rng.sample(FAMILY_DATES, rng.randint(1, 2)):
                    family.append(FamilyDate(customer=customer, label=label,
                                             date=date.today() - timedelta(days=rng.randint(365, 50 * 365))))
        self._save(Phone, phones)
        self._save(Email, emails)
        self._save(Address, addresses)
        self._save(FamilyDate, family)

    def _employments(self, customers, generated, start: int) -> None:
        rng, links = self.rng, []
        for offset, (customer, (_person, company)) in enumerate(zip(customers, generated)):
            if company is None:
                continue
            booker = start + offset in self.bookers
            if booker:
                grade, department, title = f"P{rng.randint(2, 4)}", "行政部", rng.choice(["行政助理", "差旅专员"])
            elif rng.random() < 0.15:
                level = rng.choices([1, 2, 3, 4, 5], [30, 25, 20, 15, 10])[0]
                grade, department, title = f"M{level}", rng.choice(DEPARTMENTS), M_TITLES[level]
            else:
                level = rng.choices(range(1, 9), [8, 14, 18, 18, 15, 12, 9, 6])[0]
                grade, department, title = f"P{level}", rng.choice(DEPARTMENTS), P_TITLES[level]
            links.append(Employment(company=company, person=customer, job_grade=grade, department=department,
                                    title=title, is_booker=booker, is_traveler=not booker or rng.random() < 0.3,
                                    active=rng.random() < 0.97))
        self._save(Employment, links)

    def _travel(self, customers, generated) -> None:
        """Preferences for about half, loyalty numbers for about a third."""
        rng, prefs, loyalty = self.rng, [], []
        for customer, (_person, company) in zip(customers, generated):
            airlines = sorted(set(rng.choices(AIRLINES, AIRLINE_WEIGHTS, k=rng.randint(1, 3))))
            if rng.random() < (0.75 if company else 0.45):
                senior = company is not None and rng.random() < 0.2
                prefs.append(Preferences(
                    customer=customer, airlines=airlines, seat=rng.choice(["aisle", "window", ""]),
                    meal=rng.choices(["", "VGML", "AVML", "MOML", "DBML", "GFML"], [80, 5, 6, 4, 3, 2])[0],
                    cabin="business" if senior else rng.choices(["economy", "premium", "business", "first", ""],
                                                                 [55, 12, 15, 3, 15])[0],
                    aircraft_size=rng.choice(["wide", "narrow", "", ""]),
                    hotel_chains=sorted(set(rng.sample(HOTEL_CHAINS, rng.randint(0, 2)))),
                    room_type=rng.choice(ROOM_TYPES + [""]),
                    interests=sorted(rng.sample(Preferences.INTERESTS, rng.randint(0, 3))),
                    price_sensitivity=rng.choice(["low", "medium", "high", ""]),
                    budget_per_trip=rng.choice([None, 5000, 8000, 15000, 30000, 60000])))
            if rng.random() < 0.35:
                programmes = set(airlines[:2]) | ({rng.choice(["Marriott", "Hilton", "IHG"])} if rng.random() < 0.3 else set())
                for programme in sorted(programmes):
                    tiers = LOYALTY_TIERS.get(programme, ["普卡", "银卡", "金卡"])
                    loyalty.append(LoyaltyMembership(customer=customer, programme=programme,
                                                     number=str(rng.randint(10**9, 10**12 - 1)),
                                                     tier=rng.choices(tiers, [50, 25, 15, 10][:len(tiers)])[0]))
        self._save(Preferences, prefs)
        self._save(LoyaltyMembership, loyalty)

    def _documents(self, customers, generated) -> None:
        """Encrypted and hashed exactly as crm.customers.services.document_add stores them, with its log line."""
        rng, gen, docs = self.rng, self.gen, []
        today = date.today()
        for customer, (person, _company) in zip(customers, generated):
            wanted = []
            if person.nationality == "CN":
                if rng.random() < 0.55:
                    wanted.append((TravelDocument.Kind.NATIONAL_ID, "CN", ""))
                if rng.random() < 0.5:
                    wanted.append((TravelDocument.Kind.PASSPORT, "CN", ""))
                if rng.random() < 0.15:
                    wanted.append((TravelDocument.Kind.HK_MACAU_PERMIT, "CN", ""))
                if rng.random() < 0.08:
                    country = rng.choice(["JP", "US", "GB", "AU", "FR", "DE", "KR"])
                    wanted.append((TravelDocument.Kind.VISA, country, country))
            elif rng.random() < 0.9:
                wanted.append((TravelDocument.Kind.PASSPORT, person.nationality, ""))
            for kind, country, valid_for in wanted:
                found = gen.document(kind, country, person)
                if found is None:
                    continue
                clean = crypto.normalise_number(found[2])
                number_hash = crypto.lookup_hash(f"{kind}:{country}:{clean}")
                if number_hash in self.document_hashes:
                    continue
                self.document_hashes.add(number_hash)
                years = {TravelDocument.Kind.VISA: 2, TravelDocument.Kind.NATIONAL_ID: 20}.get(kind, 10)
                # Mostly valid; some expired and some expiring within six months, to show the warnings.
                expires = today + timedelta(days=rng.choice([rng.randint(200, years * 365), rng.randint(200, years * 365),
                                                             rng.randint(200, years * 365), rng.randint(-400, -1),
                                                             rng.randint(1, 180)]))
                docs.append(TravelDocument(
                    customer=customer, kind=kind, issuing_country=country, valid_for=valid_for,
                    number_encrypted=crypto.encrypt(clean), number_hash=number_hash,
                    tail_hash=crypto.lookup_hash("tail:" + clean[-4:]), masked=crypto.mask(clean),
                    issued_on=expires - timedelta(days=years * 365), expires_on=expires))
        docs = self._save(TravelDocument, docs)
        self._save(ChangeLog, [ChangeLog(customer_id=d.customer_id, via=ChangeLog.Via.IMPORT, field="documents",
                                         new=f"{d.get_kind_display()} {d.masked}", at=self.now) for d in docs])

    def _contacts(self, customers, generated) -> None:
        """One to six contacts each over the last two years (never before the customer was created)."""
        rng, rows = self.rng, []
        two_years_ago = self.now - timedelta(days=730)
        for customer, _g in zip(customers, generated):
            since = max(customer.created_at, two_years_ago)
            span = max(1, int((self.now - since).total_seconds()))
            moments = sorted(since + timedelta(seconds=rng.randrange(span)) for _ in range(rng.randint(1, 6)))
            for i, at in enumerate(moments):
                at = min(self.now, timezone.make_aware(datetime.combine(at.date(), time(rng.randint(8, 20),
                                                                                    rng.randint(0, 59)))))
                staff = rng.choice(self.staff) if self.staff else None
                if rng.random() < 0.03:
                    recent = (self.now - at).days < 60
                    rows.append(Contact(customer=customer, staff=staff, at=at, channel=Contact.Channel.COMPLAINT,
                                        direction=Contact.Direction.INBOUND, summary=rng.choice(COMPLAINTS),
                                        resolved=not recent or rng.random() < 0.4))
                    continue
                channel, direction, summary = rng.choice(CONTACTS)
                last = i == len(moments) - 1
                next_step = rng.choice(NEXT_STEPS) if last and rng.random() < 0.25 else ""
                rows.append(Contact(customer=customer, staff=staff, at=at, channel=channel, direction=direction,
                                    summary=summary.format(d=rng.choice(DESTINATIONS)), next_step=next_step,
                                    next_step_due=(at + timedelta(days=rng.randint(1, 14))).date() if next_step else None))
        self._save(Contact, rows)
