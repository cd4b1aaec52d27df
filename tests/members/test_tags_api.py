"""Tags in the API: list and create tags, tag and untag a member, shop isolation."""

import pytest
from rest_framework.test import APIClient

from members.models import MemberTag, Tag
from shops.models import ApiKeyScope
from tests.factories import make_api_key
from tests.members.factories import MemberFactory, TagFactory

pytestmark = pytest.mark.django_db


def client_for(shop, **kwargs) -> APIClient:
    _key, plain = make_api_key(shop=shop, **kwargs)
    client = APIClient()
    client.default_format = "json"
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def rows(member):
    return set(
        MemberTag.objects.unscoped()
        .filter(member=member)
        .values_list("tag__name", "source")
    )


def test_tags_are_listed_and_created(shop, other_shop):
    TagFactory(shop=shop, name="VIP")
    TagFactory(shop=other_shop, name="Theirs")
    api = client_for(shop)

    created = api.post("/api/v1/tags", {"name": "Tea lover", "color": "#22C55E"})
    listed = api.get("/api/v1/tags").json()["results"]

    assert created.status_code == 201
    assert created.json()["color"] == "#22c55e"
    assert {t["name"] for t in listed} == {"VIP", "Tea lover"}


def test_a_duplicate_tag_name_is_a_clear_error(shop):
    TagFactory(shop=shop, name="VIP")

    response = client_for(shop).post("/api/v1/tags", {"name": "vip"})

    assert response.status_code == 400
    assert "already a tag" in response.json()["error"]["fields"]["name"][0]
    assert Tag.objects.unscoped().filter(shop=shop).count() == 1


def test_a_read_key_cannot_create_tags(shop):
    response = client_for(shop, scope=ApiKeyScope.READ).post(
        "/api/v1/tags", {"name": "VIP"}
    )

    assert response.status_code == 403


def test_tag_a_member_by_name_or_id_then_untag(shop):
    vip = TagFactory(shop=shop, name="VIP")
    TagFactory(shop=shop, name="Tea lover")
    member = MemberFactory(shop=shop)
    api = client_for(shop)
    url = f"/api/v1/members/{member.pk}/tags"

    by_name = api.post(url, {"tag": "Tea lover"})
    by_id = api.post(url, {"tag": vip.pk})
    again = api.post(url, {"tag": vip.pk})
    listed = api.get(url).json()
    removed = api.delete(f"{url}/{vip.pk}")

    assert (by_name.status_code, by_id.status_code, again.status_code) == (
        201,
        201,
        200,
    )
    assert {row["tag"]["name"] for row in listed} == {"VIP", "Tea lover"}
    assert {row["source"] for row in listed} == {"manual"}
    assert removed.status_code == 204
    assert rows(member) == {("Tea lover", "manual")}


def test_a_bad_tag_reference_is_a_400(shop):
    member = MemberFactory(shop=shop)

    response = client_for(shop).post(f"/api/v1/members/{member.pk}/tags", {"tag": [1]})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_another_shops_member_or_tag_is_a_404(shop, other_shop):
    mine = MemberFactory(shop=shop)
    my_tag = TagFactory(shop=shop, name="VIP")
    theirs = MemberFactory(shop=other_shop)
    their_tag = TagFactory(shop=other_shop, name="Theirs")
    MemberTag.objects.unscoped().create(shop=other_shop, member=theirs, tag=their_tag)
    api = client_for(shop)

    responses = [
        api.get(f"/api/v1/members/{theirs.pk}/tags"),
        api.post(f"/api/v1/members/{theirs.pk}/tags", {"tag": my_tag.pk}),
        api.post(f"/api/v1/members/{mine.pk}/tags", {"tag": their_tag.pk}),
        api.post(f"/api/v1/members/{mine.pk}/tags", {"tag": "Theirs"}),
        api.delete(f"/api/v1/members/{theirs.pk}/tags/{their_tag.pk}"),
        api.get(f"/api/v1/tags/{their_tag.pk}"),
    ]

    assert [r.status_code for r in responses] == [404] * 6
    assert rows(mine) == set()
    assert rows(theirs) == {("Theirs", "manual")}
