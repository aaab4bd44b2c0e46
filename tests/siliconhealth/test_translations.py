"""Every UI string has a French and a Swahili translation, with the same placeholders, compiled."""

import gettext
import re
from pathlib import Path

import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}")


def _entries(po: Path) -> list[tuple[str, str]]:
    entries, current, field = [], {"msgid": "", "msgstr": ""}, None
    for line in po.read_text(encoding="utf-8").splitlines() + [""]:
        if line.startswith("msgid "):
            if current["msgid"]:
                entries.append((current["msgid"], current["msgstr"]))
            current, field = {"msgid": "", "msgstr": ""}, "msgid"
            current["msgid"] = line[7:-1]
        elif line.startswith("msgstr "):
            field = "msgstr"
            current["msgstr"] = line[8:-1]
        elif line.startswith('"') and field:
            current[field] += line[1:-1]
        elif not line.strip():
            field = None
    if current["msgid"]:
        entries.append((current["msgid"], current["msgstr"]))
    return entries


@pytest.mark.parametrize("language", ["fr", "sw"])
def test_every_string_is_translated_with_its_placeholders(language):
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    entries = _entries(po)
    assert len(entries) > 100
    for msgid, msgstr in entries:
        assert msgstr, f"{language}: untranslated {msgid!r}"
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid


@pytest.mark.parametrize("language", ["fr", "sw"])
def test_compiled_catalogue_matches_the_source(language):
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    catalogue = gettext.GNUTranslations((LOCALE / language / "LC_MESSAGES" / "django.mo").open("rb"))
    for msgid, msgstr in _entries(po):
        unescaped = msgid.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
        expected = msgstr.encode().decode("unicode_escape").encode("latin-1").decode("utf-8")
        assert catalogue.gettext(unescaped) == expected, (
            f"{language}: .mo is stale for {msgid!r}; make messages"
        )
