"""The website webhook reads a plainly valid event without its serializer (issue 22: the serializer's
fields, deep-copied for every event, cost more than the rest of the parsing). ``plain_event`` must give
exactly the serializer's ``validated_data`` whenever it answers, and leave every other event — invalid
ones, and valid ones it does not read itself (dates, a budget, numbers as strings) — to the serializer,
which words the errors as before."""
import copy
import random

import pytest

from crm.pipeline.api import WebhookEvent, plain_event

BASE = {"id": "evt_1", "type": "enquiry.created", "created": 1796596984,
        "data": {"name": "赵敏", "phone": "13655556666", "email": "zhao.min@example.cn", "language": "zh-hans",
                 "member_id": "M-1", "destination": "法国 巴黎", "adults": 2, "children": 1, "message": "樱花季"}}

# (where, value): "data.x" is a field of the event's data; value DROP removes the key.
DROP = object()
CHANGES = [
    ("id", "  evt_2  "), ("id", ""), ("id", "   "), ("id", "x" * 100), ("id", "x" * 101), ("id", 17), ("id", None),
    ("id", DROP), ("id", "a\x00b"), ("id", "a\ud800b"), ("id", ["evt"]),
    ("type", "member.signed_up"), ("type", "enquiry.deleted"), ("type", ""), ("type", None), ("type", DROP),
    ("type", ["enquiry.created"]),
    ("created", DROP), ("created", None), ("created", "1796596984"), ("created", 1.5), ("created", True), ("created", -3),
    ("data", DROP), ("data", None), ("data", []), ("data", "x"),
    ("data.name", DROP), ("data.name", ""), ("data.name", "  王五  "), ("data.name", "x" * 200), ("data.name", "x" * 201),
    ("data.name", 12), ("data.name", None), ("data.name", True), ("data.name", "\x00"),
    ("data.phone", DROP), ("data.phone", ""), ("data.phone", "   "), ("data.phone", "1" * 40), ("data.phone", "1" * 41),
    ("data.phone", 13655556666), ("data.phone", None),
    ("data.email", DROP), ("data.email", ""), ("data.email", " a@b.cn "), ("data.email", "not an address"),
    ("data.email", "a@b"), ("data.email", None), ("data.email", 5), ("data.email", "ä@例子.中国"),
    ("data.language", DROP), ("data.language", "en"), ("data.language", ""), ("data.language", "fr"),
    ("data.language", None), ("data.language", " en"),
    ("data.member_id", DROP), ("data.member_id", "x" * 101), ("data.member_id", "  "),
    ("data.destination", DROP), ("data.destination", "x" * 121), ("data.destination", "\t三亚\n"),
    ("data.depart_on", "2027-04-01"), ("data.depart_on", None), ("data.depart_on", "tomorrow"),
    ("data.return_on", None), ("data.return_on", "2027-04-10"),
    ("data.adults", DROP), ("data.adults", 0), ("data.adults", 99), ("data.adults", 100), ("data.adults", "2"),
    ("data.adults", 2.0), ("data.adults", True), ("data.adults", None),
    ("data.children", DROP), ("data.children", -1), ("data.children", 99), ("data.children", 100), ("data.children", False),
    ("data.budget", None), ("data.budget", "1200.50"), ("data.budget", 1200), ("data.budget", -1), ("data.budget", "abc"),
    ("data.message", DROP), ("data.message", ""), ("data.message", "x" * 4000), ("data.message", "x" * 4001),
    ("data.message", " 你好 "), ("data.message", None), ("data.message", "\ud83d"),
    ("data.unknown", "ignored"), ("unknown", "ignored"),
]


def changed(event: dict, where: str, value) -> dict:
    event = copy.deepcopy(event)
    *path, key = where.split(".")
    target = event
    for part in path:
        if not isinstance(target.get(part), dict):
            return event
        target = target[part]
    if value is DROP:
        target.pop(key, None)
    else:
        target[key] = value
    return event


def serializer_answer(payload) -> dict | None:
    """The serializer's validated data, or None when it refuses the event."""
    event = WebhookEvent(data=payload)
    return event.validated_data if event.is_valid() else None


def assert_same(payload) -> None:
    """``plain_event`` answers only for an event the serializer accepts, and then with exactly its result
    (the same keys, in the same order); for every event it refuses, it leaves it to the serializer."""
    plain, expected = plain_event(payload), serializer_answer(payload)
    if expected is None:
        assert plain is None, payload
    elif plain is not None:
        assert plain == expected and list(plain) == list(expected), payload
        assert list(plain["data"]) == list(expected["data"]), payload


def test_a_plainly_valid_event_is_read_without_the_serializer_and_gives_its_result():
    assert plain_event(BASE) is not None
    for where, value in [("data.email", DROP), ("data.phone", DROP), ("data.language", DROP), ("created", DROP),
                         ("data.adults", DROP), ("data.message", DROP), ("data.member_id", DROP)]:
        assert plain_event(changed(BASE, where, value)) is not None, where
    assert_same(BASE)


@pytest.mark.parametrize("where, value", CHANGES, ids=[f"{w}={v!r:.20}" for w, v in CHANGES])
def test_one_change_gives_the_serializer_result_or_leaves_it_to_the_serializer(where, value):
    payload = changed(BASE, where, value)
    assert_same(payload)


def test_an_event_the_serializer_refuses_is_never_read_plainly():
    assert plain_event(changed(changed(BASE, "data.phone", ""), "data.email", "")) is None  # phone or e-mail needed
    for payload in (None, [], "evt", 3, {"id": "evt"}, {"data": {}}):
        assert plain_event(payload) is None


def test_random_mixtures_of_changes_agree_with_the_serializer():
    rng = random.Random(22)
    for _ in range(400):
        payload = BASE
        for where, value in rng.sample(CHANGES, rng.randint(1, 4)):
            payload = changed(payload, where, value)
        assert_same(payload)


def test_the_plain_reading_knows_every_field_of_the_event_and_its_limits():
    """plain_event repeats WebhookEvent's fields by hand: a field added to the serializer, or a limit changed
    there, must be read plainly too (or the event left to the serializer), so this fails until it is."""
    from crm.pipeline.api import _TEXT_LIMITS, WebhookData

    data = WebhookData()
    assert set(WebhookEvent().fields) == {"id", "type", "created", "data"}
    assert set(data.fields) == {*_TEXT_LIMITS, "language", "depart_on", "return_on", "adults", "children", "budget"}
    for name, limit in _TEXT_LIMITS.items():
        assert getattr(data.fields[name], "max_length", None) == limit, name
    assert (data.fields["adults"].min_value, data.fields["adults"].max_value) == (1, 99)
    assert (data.fields["children"].min_value, data.fields["children"].max_value) == (0, 99)
    assert list(data.fields["language"].choices) == ["zh-hans", "en"]
