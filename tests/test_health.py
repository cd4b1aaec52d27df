"""/healthz tells a load balancer whether this instance can serve."""

import os

import pytest
from django.db import OperationalError, connections
from django.test import Client


@pytest.fixture
def client():
    return Client()


@pytest.mark.django_db
def test_healthy_with_tasks_in_process(client, settings):
    # Given no broker configured: tasks run in-process
    settings.CELERY_BROKER_URL = ""

    # When a monitor asks, with no login and no shop
    response = client.get("/healthz")

    # Then the instance can serve
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "broker": "eager",
        "cache": "ok",
    }


@pytest.mark.django_db
def test_unreachable_broker_answers_503_quickly(client, settings):
    # Given a broker URL pointing at a closed port
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    # Then the instance reports it cannot hand work to the queue
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["broker"] == "error"
    assert body["database"] == "ok"


@pytest.mark.broker
@pytest.mark.django_db
def test_reachable_broker_is_ok(client, settings):
    settings.CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


@pytest.mark.django_db
def test_database_that_does_not_answer_gives_503_not_500(client, settings, monkeypatch):
    # Given a database that refuses connections. A real outage cannot be made
    # inside a test that needs the database, so the connection attempt is made to
    # fail the way a refused connection does (OperationalError).
    settings.CELERY_BROKER_URL = ""
    connection = connections["default"]

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "ensure_connection", refuse)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["database"] == "error"
    assert response.json()["status"] == "degraded"


def test_health_only_answers_get(client):
    assert client.post("/healthz").status_code == 405
