"""Hand pending outbox events to Celery: once, or in a loop (`--loop`).

Beat runs the same relay every few seconds (`shops.tasks.relay_outbox`); this
command is for a deployment without beat, and for operators after an outage.
"""

import time

from django.core.management.base import BaseCommand

from shops.services.events import relay_outbox
from shops.services.events.outbox import RELAY_BATCH_SIZE


class Command(BaseCommand):
    help = "Hand pending outbox events (webhooks and other background work) to Celery."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=RELAY_BATCH_SIZE,
            help="Events per database transaction (default %(default)s).",
        )
        parser.add_argument(
            "--loop", action="store_true", help="Keep relaying until stopped."
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=5.0,
            help="Seconds to wait between rounds with --loop (default %(default)s).",
        )

    def handle(self, *args, batch_size, loop, interval, **options):
        while True:
            total = 0
            while True:
                relayed = relay_outbox(batch_size=batch_size)
                total += relayed
                # A short batch means the outbox is empty or the broker is away.
                if relayed < batch_size:
                    break
            self.stdout.write(f"Relayed {total} events.")
            if not loop:
                return
            time.sleep(interval)
