"""The first endpoints: the key's shop, its stores and its webhook endpoints,
and never another shop's."""

import pytest
from rest_framework.test import APIClient

from shops.models import WebhookEndpoint
from shops.tenancy import current_shop_or_none
from tests.factories import StoreFactory, WebhookEndpointFactory, make_api_key

pytestmark = pytest.mark.django_db


def client_for(shop, **kwargs) -> APIClient:
    _key, plain = make_api_key(shop=shop, **kwargs)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def test_the_shop_endpoint_returns_the_keys_shop(shop, other_shop):
    response = client_for(shop).get("/api/v1/shop")

    assert response.status_code == 200
    assert response.json() == {
        "id": shop.id,
        "name": "Tea House",
        "slug": "tea-house",
        "currency": "CNY",
        "time_zone": "Asia/Shanghai",
        "country": "CN",
        "language": "zh-hans",
        "brand_color": "#0f766e",
        "logo": None,
    }


def test_the_shop_scope_ends_with_the_request(shop):
    client_for(shop).get("/api/v1/stores")

    assert current_shop_or_none() is None


def test_store_list_shows_only_the_keys_shop(shop, other_shop):
    mine = StoreFactory(shop=shop, code="SH01")
    StoreFactory(shop=other_shop, code="BJ01")

    response = client_for(shop).get("/api/v1/stores")

    assert response.status_code == 200
    assert [s["id"] for s in response.json()["results"]] == [mine.id]


def test_store_filters(shop):
    StoreFactory(shop=shop, code="SH01")
    closed = StoreFactory(shop=shop, code="SH02", is_active=False)
    api = client_for(shop)

    inactive = api.get("/api/v1/stores?is_active=false").json()["results"]
    by_code = api.get("/api/v1/stores?code=SH02").json()["results"]

    assert [s["id"] for s in inactive] == [closed.id]
    assert [s["id"] for s in by_code] == [closed.id]


def test_another_shops_store_is_404_like_a_missing_one(shop, other_shop):
    theirs = StoreFactory(shop=other_shop)
    api = client_for(shop)

    foreign = api.get(f"/api/v1/stores/{theirs.id}")
    missing = api.get("/api/v1/stores/987654")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()


def test_cursor_pages_return_every_store_once(shop):
    created = {StoreFactory(shop=shop).id for _ in range(7)}
    api = client_for(shop)

    seen, url = [], "/api/v1/stores?page_size=3"
    while url:
        page = api.get(url).json()
        seen += [s["id"] for s in page["results"]]
        url = page["next"]

    assert len(seen) == len(created)
    assert set(seen) == created
    assert seen == sorted(seen, reverse=True)


def test_page_size_is_capped(shop):
    for _ in range(3):
        StoreFactory(shop=shop)

    response = client_for(shop).get("/api/v1/stores?page_size=100000")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 3


def test_registering_a_webhook_endpoint_shows_the_secret_once(shop):
    api = client_for(shop)

    created = api.post(
        "/api/v1/webhook-endpoints",
        {"url": "https://example.com/hook", "events": ["*"], "description": "POS"},
        format="json",
    )
    listed = api.get("/api/v1/webhook-endpoints")
    shown = api.get(f"/api/v1/webhook-endpoints/{created.json()['id']}")

    assert created.status_code == 201
    assert created.json()["secret"].startswith("whsec_")
    assert created.json()["events"] == ["*"]
    assert "secret" not in listed.json()["results"][0]
    assert "secret" not in shown.json()
    endpoint = WebhookEndpoint.objects.unscoped().get(pk=created.json()["id"])
    assert endpoint.shop == shop


def test_an_unknown_event_type_is_refused(shop):
    response = client_for(shop).post(
        "/api/v1/webhook-endpoints",
        {"url": "https://example.com/hook", "events": ["no.such.event"]},
        format="json",
    )

    assert response.status_code == 400
    assert "events" in response.json()["error"]["fields"]
    assert not WebhookEndpoint.objects.unscoped().exists()


def test_deleting_a_webhook_endpoint_stops_it(shop):
    endpoint = WebhookEndpointFactory(shop=shop)

    response = client_for(shop).delete(f"/api/v1/webhook-endpoints/{endpoint.id}")

    assert response.status_code == 204
    endpoint.refresh_from_db()
    assert endpoint.is_active is False


def test_another_shops_webhook_endpoint_is_404_for_read_and_delete(shop, other_shop):
    theirs = WebhookEndpointFactory(shop=other_shop)
    api = client_for(shop)

    read = api.get(f"/api/v1/webhook-endpoints/{theirs.id}")
    delete = api.delete(f"/api/v1/webhook-endpoints/{theirs.id}")
    listed = api.get("/api/v1/webhook-endpoints")

    assert read.status_code == delete.status_code == 404
    assert listed.json()["results"] == []
    theirs.refresh_from_db()
    assert theirs.is_active is True


def test_a_read_key_cannot_delete_a_webhook_endpoint(shop):
    endpoint = WebhookEndpointFactory(shop=shop)

    response = client_for(shop, scope="read").delete(
        f"/api/v1/webhook-endpoints/{endpoint.id}"
    )

    assert response.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.is_active is True


def test_schema_and_docs_are_public(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    docs = client.get("/api/docs/")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/v1/shop", "/api/v1/stores", "/api/v1/webhook-endpoints"} <= set(paths)
    create = paths["/api/v1/webhook-endpoints"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert {"400", "401", "403", "422", "429"} <= set(create["responses"])
    assert "ApiKeyAuth" in schema.json()["components"]["securitySchemes"]
    assert docs.status_code == 200
