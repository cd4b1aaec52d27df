"""Compile every locale/*/LC_MESSAGES/*.po to .mo in pure Python (polib).

`compilemessages` needs GNU gettext's msgfmt, which a fresh machine may lack;
`make run` and the Docker image use this command instead.
"""

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def catalogues() -> list[Path]:
    found: list[Path] = []
    for root in settings.LOCALE_PATHS:
        found.extend(sorted(Path(root).glob("*/LC_MESSAGES/*.po")))
    return found


class Command(BaseCommand):
    help = "Compile the translation catalogues (.po) to .mo without GNU gettext."

    def handle(self, *args, **options):
        for po_path in catalogues():
            try:
                catalogue = polib.pofile(str(po_path))
            except (OSError, ValueError) as exc:
                raise CommandError(f"{po_path}: {exc}") from exc
            mo_path = po_path.with_suffix(".mo")
            catalogue.save_as_mofile(str(mo_path))
            self.stdout.write(
                f"{mo_path.relative_to(settings.BASE_DIR)}: "
                f"{len(catalogue.translated_entries())} messages"
            )
