"""The zh-Hans catalogue is complete (issue 20, "So it stays fixed").

- ``msgfmt -c --statistics`` (GNU gettext) accepts every catalogue of ``locale/zh_Hans`` (``django.po``, and
  ``djangojs.po`` when there is one) and counts no untranslated and no fuzzy entry.
- ``makemessages`` would find no string the catalogue lacks: Django's own ``makemessages`` runs over a copy of the
  sources (symbolic links to every top-level folder, as ``make messages`` sees them) into a copy of ``locale/``
  (a few seconds), and every msgid it extracts must already be in ``django.po``. The real ``locale/`` is never
  written: the run uses a settings module of its own whose ``LOCALE_PATHS`` is the copy.

Fix a failure with ``make messages`` and a translation of each new entry.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES"
CATALOGUES = [p for p in (LOCALE / "django.po", LOCALE / "djangojs.po") if p.exists()]
# What `make messages` leaves out (Makefile: --ignore '.venv/*' --ignore 'var/*'), and the catalogues themselves.
NOT_SOURCES = {".venv", "var", "locale", ".git", "staticfiles", "media", "node_modules"}

pytestmark = pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) is not installed")


def statistics(po: Path) -> dict[str, int]:
    """``msgfmt -c --statistics`` of ``po``: {"translated": n, "fuzzy": n, "untranslated": n}; fails on an error."""
    result = subprocess.run(["msgfmt", "-c", "--statistics", "-o", os.devnull, str(po)], capture_output=True, text=True,
                            env={**os.environ, "LC_ALL": "C"})
    assert result.returncode == 0, f"msgfmt -c refused {po.relative_to(ROOT)}:\n{result.stderr}"
    counts = {kind: 0 for kind in ("translated", "fuzzy", "untranslated")}
    for number, kind in re.findall(r"(\d+) (translated|fuzzy|untranslated)", result.stderr):
        counts[kind] = int(number)
    assert counts["translated"], f"msgfmt said nothing we understand: {result.stderr!r}"
    return counts


@pytest.mark.parametrize("po", CATALOGUES, ids=[p.name for p in CATALOGUES])
def test_msgfmt_accepts_the_catalogue_with_nothing_untranslated_or_fuzzy(po):
    counts = statistics(po)
    assert counts["untranslated"] == 0 and counts["fuzzy"] == 0, (
        f"{po.relative_to(ROOT)}: {counts['untranslated']} untranslated and {counts['fuzzy']} fuzzy entries "
        f"({counts['translated']} translated): translate them and drop the fuzzy flags")


def test_statistics_reads_untranslated_and_fuzzy_counts(tmp_path):
    """The parser above really sees an untranslated and a fuzzy entry (so a pass means something)."""
    po = tmp_path / "t.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "Yes"\nmsgstr "是"\n\nmsgid "No"\nmsgstr ""\n\n#, fuzzy\nmsgid "Maybe"\nmsgstr "也许"\n',
                  encoding="utf-8")
    assert statistics(po) == {"translated": 1, "fuzzy": 1, "untranslated": 1}


def _msgids(po: Path) -> set[tuple[str | None, str]]:
    import polib

    return {(entry.msgctxt, entry.msgid) for entry in polib.pofile(str(po)) if not entry.obsolete}


def test_makemessages_finds_no_string_the_catalogue_lacks(tmp_path):
    sources = tmp_path / "src"
    sources.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in NOT_SOURCES and not entry.name.startswith("."):
            (sources / entry.name).symlink_to(entry)
    copy = sources / "locale" / "zh_Hans" / "LC_MESSAGES"
    copy.mkdir(parents=True)
    shutil.copy(LOCALE / "django.po", copy / "django.po")
    (tmp_path / "catalogue_settings.py").write_text(
        f"from caravan.settings import *  # noqa: F401,F403\nLOCALE_PATHS = [{str(sources / 'locale')!r}]\n")
    from cryptography.fernet import Fernet

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "catalogue_settings", "SECRET_KEY": "makemessages-only",
           "DATABASE_URL": "postgres://unused/unused", "REDIS_URL": "redis://unused:6379/0",
           "DOCUMENT_HASH_KEY": "unused", "DOCUMENT_KEYS": Fernet.generate_key().decode(),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT), str(ROOT / "platform")])}
    result = subprocess.run([sys.executable, "-m", "django", "makemessages", "-l", "zh_Hans", "--symlinks",
                             "--ignore", ".venv/*", "--ignore", "var/*"],
                            cwd=sources, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    missing = _msgids(copy / "django.po") - _msgids(LOCALE / "django.po")
    assert not missing, (f"{len(missing)} strings of the sources are not in locale/zh_Hans/LC_MESSAGES/django.po "
                         "(run `make messages` and translate them):\n  "
                         + "\n  ".join(sorted((f"[{ctx}] " if ctx else "") + msgid[:100] for ctx, msgid in missing)))
