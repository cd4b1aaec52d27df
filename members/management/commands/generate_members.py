"""Fill a shop with many made-up members and purchases, fast (PostgreSQL COPY).

    manage.py generate_members --shop-slug bench --members 1000000 \\
        --purchases 10000000 --seed 1 --stores 8

Creates the shop when it does not exist. Same seed, same data (in a fresh
shop; times are relative to today). The rows are made by bench/datagen.py;
PostgreSQL only, as COPY is: on SQLite the command refuses (use load_demo).
"""

from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils.translation import gettext as _

from bench.datagen import NeedsPostgres, Step, generate
from shops.models import Shop
from shops.services import tenants


class Command(BaseCommand):
    help = (
        "Add N made-up members and M purchases to a shop with PostgreSQL COPY, "
        "deterministic from a seed (for benchmarks and trying the admin at scale)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--shop-slug", required=True, help="The shop to fill.")
        parser.add_argument("--members", type=int, required=True)
        parser.add_argument("--purchases", type=int, default=0)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--stores", type=int, help="Add branches until the shop has this many."
        )
        parser.add_argument(
            "--indexes",
            choices=("auto", "keep", "rebuild"),
            default="auto",
            help="Drop and rebuild secondary indexes around the load (auto: when "
            "it adds at least 100,000 rows and no fewer than the table holds). "
            "A rebuild locks the tables until the run ends.",
        )

    def handle(self, *args, shop_slug, members, purchases, seed, stores, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                _(
                    "generate_members loads with PostgreSQL COPY; this database is "
                    "%(vendor)s. Set DATABASE_URL=postgres://... (or use load_demo "
                    "for a small demo shop)."
                )
                % {"vendor": connection.vendor}
            )
        if members < 1 or purchases < 0 or (stores is not None and stores < 1):
            raise CommandError(
                _("Give at least 1 member, 0 or more purchases and 1 or more stores.")
            )
        started = time.perf_counter()
        shop = Shop.objects.filter(slug=shop_slug).first()
        if shop is None:
            try:
                shop = tenants.create_shop(
                    name=f"Generated {shop_slug}", slug=shop_slug
                )
            except ValidationError as error:
                raise CommandError(
                    "; ".join(m for ms in error.message_dict.values() for m in ms)
                ) from error
            self.stdout.write(_("Created shop %(slug)s.") % {"slug": shop.slug})

        def progress(step: Step) -> None:
            rate = (
                f"  ({step.rows / step.seconds:,.0f} rows/s)" if step.rows > 99 else ""
            )
            self.stdout.write(f"  {step.name:<32} {step.seconds:8.1f} s{rate}")

        try:
            report = generate(
                shop=shop,
                members=members,
                purchases=purchases,
                seed=seed,
                stores=stores,
                indexes=options["indexes"],
                progress=progress,
            )
        except NeedsPostgres as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Shop %(slug)s: %(members)s members, %(purchases)s purchases, "
                    "%(refunds)s refunds added in %(seconds).1f s."
                )
                % {
                    "slug": shop.slug,
                    "members": f"{report.members:,}",
                    "purchases": f"{report.purchases:,}",
                    "refunds": f"{report.refunds:,}",
                    "seconds": time.perf_counter() - started,
                }
            )
        )
        if report.indexes_rebuilt:
            self.stdout.write(
                _("Indexes rebuilt: %(names)s")
                % {"names": ", ".join(report.indexes_rebuilt)}
            )
        if not report.fk_checks_skipped:
            self.stdout.write(
                _(
                    "Foreign keys were checked row by row (the database user is "
                    "not a superuser): slower, same result."
                )
            )
