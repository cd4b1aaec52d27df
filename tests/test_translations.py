"""The Simplified Chinese catalogue is complete and its compiled .mo is current."""

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
