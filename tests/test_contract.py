"""Contract test: fuzz every operation of the OpenAPI schema against the app.

It loads the live schema from /api/schema/, so every endpoint added later is
covered without touching this file. A case fails on any 5xx, or on any status,
content type, header or body that the schema does not document.

It runs with a valid write key of a seeded shop (two stores and a webhook
endpoint), so reads find real rows and writes go through. Cost is bounded by
`max_examples` per operation (CONTRACT_MAX_EXAMPLES to raise it locally).
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.settings import api_settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.factories import StoreFactory, WebhookEndpointFactory, make_api_key

MAX_EXAMPLES = int(os.environ.get("CONTRACT_MAX_EXAMPLES", "25"))

schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_key_header(db, settings, shop):
    """A write key of a seeded shop, and an app that stays inside the test."""
    StoreFactory(shop=shop, code="SH01")
    StoreFactory(shop=shop, code="SH02", is_active=False)
    WebhookEndpointFactory(shop=shop)
    _key, plain = make_api_key(shop=shop)

    settings.ALLOWED_HOSTS = ["localhost", "testserver"]
    # Endpoint URLs are random hosts: no DNS look-up while registering them,
    # and a delivery attempt (if any runs in-process) gives up at once.
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.2
    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "api_key": "1000000/min"}
    settings.REST_FRAMEWORK = {
        **api_settings.user_settings,
        "DEFAULT_THROTTLE_RATES": rates,
    }
    # Called through WSGI, Django would close the test's connection (inside
    # its transaction) at the end of each request, as Django's test client
    # prevents for its own requests.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield f"Api-Key {plain}"
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@hypothesis_settings(
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_every_operation_keeps_its_contract(case, api_key_header):
    case.call_and_validate(headers={"Authorization": api_key_header}, checks=CHECKS)
