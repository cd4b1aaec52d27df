"""The base every later endpoint builds on: scoped views, errors, idempotency."""

import pytest
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory

from shops.api.errors import handler500
from shops.api.idempotency import idempotent
from shops.api.views import ShopScopedAPIView
from shops.errors import DomainError
from shops.models import Store
from shops.tenancy import current_shop_or_none
from tests.factories import StoreFactory, make_api_key

pytestmark = pytest.mark.django_db


class InsufficientPoints(DomainError):
    code = "insufficient_points"
    default_message = "Not enough points."


class RedeemView(ShopScopedAPIView):
    """A later app's endpoint, declared the same way."""

    @idempotent(required=True)
    def post(self, request):
        if request.data.get("points", 0) > 100:
            raise InsufficientPoints(fields={"points": ["Only 100 available."]})
        if request.data.get("points", 0) < 0:
            raise ValidationError({"points": ["Must be positive."]})
        store = Store.objects.create(
            shop=self.shop, name="Redeemed", code=f"R{request.data['points']}"
        )
        return Response({"store": store.id}, status=201)

    def get(self, request):
        return Response({"stores": list(Store.objects.values_list("id", flat=True))})


def call(shop, method="post", data=None, **headers):
    _key, plain = make_api_key(shop=shop)
    factory = APIRequestFactory()
    request = getattr(factory, method)(
        "/api/v1/redeem",
        data,
        format="json",
        headers={"Authorization": f"Api-Key {plain}", **headers},
    )
    response = RedeemView.as_view()(request)
    response.render()
    return response


def test_a_view_sees_only_the_keys_shop_and_leaves_no_scope_behind(shop, other_shop):
    mine = StoreFactory(shop=shop)
    StoreFactory(shop=other_shop)

    response = call(shop, "get")

    assert response.data == {"stores": [mine.id]}
    assert current_shop_or_none() is None


def test_a_domain_error_is_its_status_and_code_in_the_error_shape(shop):
    response = call(shop, data={"points": 500}, **{"Idempotency-Key": "r-1"})

    assert response.status_code == 409
    assert response.data == {
        "error": {
            "code": "insufficient_points",
            "message": "Not enough points.",
            "fields": {"points": ["Only 100 available."]},
        }
    }


def test_a_django_validation_error_is_400_invalid_with_fields(shop):
    response = call(shop, data={"points": -1}, **{"Idempotency-Key": "r-2"})

    assert response.status_code == 400
    assert response.data["error"]["code"] == "invalid"
    assert response.data["error"]["fields"] == {"points": ["Must be positive."]}


def test_a_required_idempotency_key_that_is_missing_is_400(shop):
    response = call(shop, data={"points": 5})

    assert response.status_code == 400
    assert response.data["error"]["code"] == "idempotency_key_required"
    assert not Store.objects.unscoped().exists()


def test_a_refused_write_leaves_no_half_write_and_no_record(shop):
    call(shop, data={"points": 500}, **{"Idempotency-Key": "r-3"})

    retried = call(shop, data={"points": 5}, **{"Idempotency-Key": "r-3"})

    assert retried.status_code == 201
    assert Store.objects.unscoped().count() == 1


def test_a_subclass_cannot_override_the_scoping():
    with pytest.raises(TypeError, match="dispatch"):

        class Sneaky(ShopScopedAPIView):
            def dispatch(self, request, *args, **kwargs):
                return super().dispatch(request, *args, **kwargs)


def test_a_server_error_under_the_api_is_json_and_html_elsewhere():
    factory = RequestFactory()

    api = handler500(factory.get("/api/v1/shop"))
    page = handler500(factory.get("/admin/"))

    assert api.status_code == page.status_code == 500
    assert api["Content-Type"] == "application/json"
    assert b'"server_error"' in api.content
    assert page["Content-Type"].startswith("text/html")
