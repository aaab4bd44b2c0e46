"""Every UI string has a French and a Swahili translation, with the same placeholders, compiled."""

import gettext
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w*\}")
LANGUAGES = ["fr", "sw"]


def _catalogue(language: str) -> polib.POFile:
    return polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))


def _live(po: polib.POFile) -> list[polib.POEntry]:
    return [entry for entry in po if not entry.obsolete]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_translated_with_its_placeholders(language):
    entries = _live(_catalogue(language))
    assert len(entries) > 100
    for entry in entries:
        assert "fuzzy" not in entry.flags, f"{language}: fuzzy (unchecked) translation of {entry.msgid!r}"
        if entry.msgid_plural:
            forms = [entry.msgstr_plural[i] for i in sorted(entry.msgstr_plural)]
            assert forms and all(forms), f"{language}: untranslated plural {entry.msgid!r}"
            wanted = sorted(PLACEHOLDER.findall(entry.msgid_plural))
        else:
            forms = [entry.msgstr]
            assert entry.msgstr, f"{language}: untranslated {entry.msgid!r}"
            wanted = sorted(PLACEHOLDER.findall(entry.msgid))
        for form in forms:
            assert sorted(PLACEHOLDER.findall(form)) == wanted, entry.msgid


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_string_is_listed_twice(language):
    keys = [(entry.msgctxt, entry.msgid) for entry in _live(_catalogue(language))]
    assert len(keys) == len(set(keys)), sorted({k for k in keys if keys.count(k) > 1})


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogue_matches_the_source(language):
    compiled = gettext.GNUTranslations((LOCALE / language / "LC_MESSAGES" / "django.mo").open("rb"))
    for entry in _live(_catalogue(language)):
        if entry.msgid_plural:
            for n in (1, 2, 5):
                form = entry.msgstr_plural[compiled.plural(n)]
                assert compiled.ngettext(entry.msgid, entry.msgid_plural, n) == form, (
                    f"{language}: .mo is stale for {entry.msgid!r} (n={n}); make messages"
                )
        else:
            assert compiled.gettext(entry.msgid) == entry.msgstr, (
                f"{language}: .mo is stale for {entry.msgid!r}; make messages"
            )


def test_every_string_in_the_code_is_in_the_catalogues(tmp_path):
    """Extract the strings afresh (makemessages in a copy of the source) so that a string added to a
    template or a module without `make messages` is caught here, not by a Swahili-speaking nurse."""
    root = LOCALE.parent
    copy = tmp_path / "src"
    skip = shutil.ignore_patterns(".venv", "var", "tests", ".git", "node_modules", "__pycache__", "*.mo")
    shutil.copytree(root, copy, ignore=skip)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "fr", "--ignore=.venv", "--ignore=var"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={**os.environ, "SILICONHEALTH_HOME": str(tmp_path / "home")},
    )
    extracted = {entry.msgid for entry in _live(polib.pofile(str(copy / "locale/fr/LC_MESSAGES/django.po")))}
    for language in LANGUAGES:
        translated = {entry.msgid for entry in _live(_catalogue(language)) if entry.translated()}
        missing = sorted(extracted - translated)
        assert not missing, f"{language}: not translated (run make messages, then translate): {missing[:10]}"
