"""The occasions every agency starts with: birthdays, Spring Festival and Mid-Autumn Festival, in
Chinese and English. Agencies change the words, the timing and the channels, or switch them off."""
from django.db import migrations

SIGNATURE_ZH = "\n\n{{ owner_name }}\n{{ agency_name }}"
SIGNATURE_EN = "\n\nWarm regards,\n{{ owner_name }}\n{{ agency_name }}"

DEFAULTS = [
    {
        "name": "生日问候 Birthday", "kind": "birthday", "festival": "", "make_task": True,
        "subject_zh": "{{ name }}，生日快乐！",
        "body_zh": "亲爱的{{ name }}：\n\n在您生日之际，{{ agency_name }}全体同仁祝您生日快乐，身体健康，"
                   "新的一岁旅途愉快！期待继续陪您发现更多美好的目的地。" + SIGNATURE_ZH,
        "subject_en": "Happy birthday, {{ name }}!",
        "body_en": "Dear {{ name }},\n\nEveryone at {{ agency_name }} wishes you a very happy birthday and many "
                   "wonderful journeys in the year ahead." + SIGNATURE_EN,
    },
    {
        "name": "春节问候 Spring Festival", "kind": "festival", "festival": "spring_festival", "make_task": False,
        "subject_zh": "{{ agency_name }}恭祝您新春快乐！",
        "body_zh": "亲爱的{{ name }}：\n\n值此{{ occasion }}来临之际，{{ agency_name }}恭祝您和家人新春快乐，"
                   "阖家幸福，万事如意！感谢您一直以来的信任与支持。" + SIGNATURE_ZH,
        "subject_en": "Happy Chinese New Year from {{ agency_name }}",
        "body_en": "Dear {{ name }},\n\nAs the {{ occasion }} arrives, all of us at {{ agency_name }} wish you and "
                   "your family health, happiness and prosperity in the new year. Thank you for travelling with us."
                   + SIGNATURE_EN,
    },
    {
        "name": "中秋问候 Mid-Autumn Festival", "kind": "festival", "festival": "mid_autumn", "make_task": False,
        "subject_zh": "{{ agency_name }}祝您中秋快乐，花好月圆",
        "body_zh": "亲爱的{{ name }}：\n\n月圆人团圆。值此{{ occasion }}，{{ agency_name }}祝您和家人中秋快乐，"
                   "花好月圆，幸福安康！" + SIGNATURE_ZH,
        "subject_en": "Happy Mid-Autumn Festival from {{ agency_name }}",
        "body_en": "Dear {{ name }},\n\nMay the full moon of the {{ occasion }} bring you and your family "
                   "togetherness and joy. Best wishes from all of us at {{ agency_name }}." + SIGNATURE_EN,
    },
]


def seed(apps, schema_editor):
    Occasion = apps.get_model("loyalty", "Occasion")
    for fields in DEFAULTS:
        Occasion.objects.get_or_create(kind=fields["kind"], festival=fields["festival"],
                                       defaults={**fields, "days_before": 0, "send_email": True, "active": True})


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
