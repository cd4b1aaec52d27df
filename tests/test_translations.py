"""The Simplified Chinese catalogue is complete and its compiled .mo is current."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings

PO = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    assert PO.exists(), f"{PO} is missing: run `make messages` and translate it"
    return polib.pofile(str(PO))


def ids(entries) -> list[str]:
    return [entry.msgid for entry in entries]


def test_every_message_is_translated(catalogue):
    assert ids(catalogue.untranslated_entries()) == []


def test_no_translation_is_fuzzy(catalogue):
    # gettext ignores fuzzy entries: the person would see English.
    assert ids(catalogue.fuzzy_entries()) == []


def test_no_obsolete_entries(catalogue):
    assert ids(catalogue.obsolete_entries()) == []


def test_compiled_catalogue_matches_the_source(catalogue):
    mo_path = PO.with_suffix(".mo")
    assert mo_path.exists(), "run `make translations` and commit the .mo"
    compiled = polib.mofile(str(mo_path))

    def pairs(entries):
        return {
            (e.msgctxt, e.msgid): (e.msgstr, tuple(sorted(e.msgstr_plural.items())))
            for e in entries
            if e.msgid
        }

    assert pairs(compiled) == pairs(catalogue.translated_entries()), (
        "locale/zh_Hans/LC_MESSAGES/django.mo is stale: run `make translations`"
    )


@pytest.mark.skipif(
    shutil.which("xgettext") is None,
    reason="needs GNU gettext (xgettext) to extract the strings from the code",
)
def test_the_catalogue_has_every_string_of_the_code(catalogue, tmp_path):
    # Extract into a copy of the tracked sources, so the working tree is untouched.
    tracked = subprocess.run(
        ["git", "ls-files", "-z"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in tracked)):
        source = Path(settings.BASE_DIR) / name
        if source.is_file():
            target = tmp_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    subprocess.run(
        [
            *(sys.executable, "manage.py", "makemessages", "-l", "zh_Hans"),
            *("--no-obsolete", "--ignore=bench", "--ignore=tests", "-v0"),
        ],
        cwd=tmp_path,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    extracted = polib.pofile(str(tmp_path / PO.relative_to(settings.BASE_DIR)))

    def keys(po):
        return {(e.msgctxt, e.msgid) for e in po if not e.obsolete}

    assert keys(extracted) - keys(catalogue) == set(), (
        "strings missing from the zh-Hans catalogue: run `make messages`, "
        "translate them and `make translations`"
    )
    assert keys(catalogue) - keys(extracted) == set(), (
        "the zh-Hans catalogue has strings the code no longer uses"
    )
