"""config.wsgi: API requests take the lean middleware, the rest the full one."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config.wsgi import application
from members.models import Purchase
from shops.tenancy import shop_scope
from tests.factories import make_api_key
from tests.members.factories import MemberFactory


@pytest.fixture
def call(db, settings):
    """Call the WSGI application as gunicorn does; returns (status, headers, body)."""
    settings.ALLOWED_HOSTS = ["testserver"]
    # As Django's test client does for its own requests: through WSGI, Django
    # would close the test's connection (inside its transaction) after each.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)

    def call(method, path, *, body=None, **headers):
        data = json.dumps(body).encode() if body is not None else b""
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "SERVER_NAME": "testserver",
            "HTTP_HOST": "testserver",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.input": io.BytesIO(data),
        }
        environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
        setup_testing_defaults(environ)
        answer = {}

        def start_response(status, response_headers, exc_info=None):
            answer["status"] = int(status.split()[0])
            answer["headers"] = response_headers

        content = b"".join(application(environ, start_response))
        return answer["status"], answer["headers"], content

    try:
        yield call
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def names(headers):
    return {name.lower() for name, _value in headers}


def test_the_api_middleware_is_a_part_of_the_sites_in_its_order():
    positions = [settings.MIDDLEWARE.index(m) for m in settings.API_MIDDLEWARE]
    assert positions == sorted(positions)


def test_a_till_records_a_purchase_through_the_lean_middleware(call, shop):
    member = MemberFactory(shop=shop)
    _key, plain = make_api_key(shop=shop)
    status, headers, content = call(
        "POST",
        "/api/v1/purchases",
        body={"member_id": member.pk, "external_order_id": "A-1", "amount": "50"},
        authorization=f"Api-Key {plain}",
        idempotency_key="A-1",
    )
    # No CSRF token asked, no session cookie set.
    assert status == 201, content
    assert json.loads(content)["member"]["order_count"] == 1
    assert "set-cookie" not in names(headers)
    with shop_scope(shop):
        assert Purchase.objects.filter(external_order_id="A-1").count() == 1


def test_api_errors_still_speak_the_callers_language(call, shop):
    status, _headers, content = call(
        "GET", "/api/v1/shop", authorization="Api-Key nope", accept_language="zh-hans"
    )
    assert status == 401
    assert json.loads(content)["error"]["message"] == "API 密钥无效。"


def test_the_site_keeps_its_sessions_csrf_and_frame_protection(call):
    status, headers, content = call("GET", "/admin/login/")
    assert status == 200
    assert "x-frame-options" in names(headers)
    cookies = [value for name, value in headers if name.lower() == "set-cookie"]
    assert any(cookie.startswith(settings.CSRF_COOKIE_NAME) for cookie in cookies)
    assert b"csrfmiddlewaretoken" in content
