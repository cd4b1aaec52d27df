"""The outbox across a broker outage, with a real Celery worker reading Redis.

Given the broker unreachable, changes still commit quickly and their events wait
in the outbox; once the broker is back, the relay hands them over and a real
worker process delivers every event exactly once.
"""

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from config.celery import app
from shops import webhook_signing
from shops.models import OutboxEvent, WebhookDelivery
from shops.services.events import relay_outbox, send_test_event
from tests.factories import ShopFactory, WebhookEndpointFactory
from tests.shops.webhook_receiver import WebhookReceiver, broker_at

CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"
ROOT = Path(__file__).resolve().parents[2]


def start_worker() -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        # The worker must read the database this test writes to.
        "DATABASE_URL": (
            "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
                **{
                    key: connection.settings_dict[key] or ""
                    for key in ("USER", "HOST", "PORT", "NAME")
                }
            )
        ),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "true",
    }
    if connection.settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = connection.settings_dict["PASSWORD"]
    celery = Path(sys.executable).with_name("celery")
    return subprocess.Popen(
        [str(celery), "-A", "config", "worker", "--pool=solo", "--loglevel=WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop_worker(worker: subprocess.Popen) -> str:
    worker.terminate()
    try:
        _, err = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        _, err = worker.communicate()
    return err.decode(errors="replace")[-3000:]


@pytest.mark.postgres
@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_events_made_while_the_broker_is_down_are_delivered_once_by_a_worker():
    shop = ShopFactory(slug="outage-shop")
    with WebhookReceiver() as receiver:
        endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)

        # Given the broker is unreachable, when staff make several changes:
        with broker_at(CLOSED_PORT_BROKER):
            for _ in range(5):
                started = time.monotonic()
                send_test_event(endpoint=endpoint)
                # Each change commits and returns; bounded, not benchmarked.
                assert time.monotonic() - started < 10

        events = list(OutboxEvent.objects.unscoped().filter(shop=shop))
        assert len(events) == 5
        assert all(event.relayed_at is None for event in events)
        assert not WebhookDelivery.objects.unscoped().exists()

        # When the broker is back, the relay hands the events to a real worker.
        app.control.purge()  # nothing left over from an earlier run
        assert relay_outbox() == 5
        worker = start_worker()
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                delivered = WebhookDelivery.objects.unscoped().filter(
                    shop=shop, status="delivered"
                )
                if delivered.count() == 5 or worker.poll() is not None:
                    break
                time.sleep(0.2)
            time.sleep(0.5)  # a duplicate, if any, would arrive now
        finally:
            worker_log = stop_worker(worker)

    # Then every event arrived exactly once, signed, and is recorded delivered.
    received = Counter(headers["Regulars-Event-Id"] for headers, _ in receiver.requests)
    assert received == Counter({str(event.pk): 1 for event in events}), worker_log
    assert all(
        webhook_signing.verify(endpoint.secret, body, headers["Regulars-Signature"])
        for headers, body in receiver.requests
    )
    deliveries = WebhookDelivery.objects.unscoped().filter(shop=shop)
    assert sorted(d.status for d in deliveries) == ["delivered"] * 5
    assert all(d.attempt_count == 1 for d in deliveries)
    assert not OutboxEvent.objects.unscoped().filter(processed_at=None).exists()
