"""The member and purchase lists offer "Export" to managers and owners only."""

import pytest
from django.conf import settings
from django.urls import reverse

from shops.models import Role
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

LISTS = {
    "members": reverse("admin:members_member_changelist"),
    "purchases": reverse("admin:members_purchase_changelist"),
}
EXPORTS = {
    "members": reverse("admin:members_export_members"),
    "purchases": reverse("admin:members_export_purchases"),
}


def login(client, shop, role):
    membership = MembershipFactory(shop=shop, role=role, user__is_staff=True)
    client.force_login(membership.user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    return client


@pytest.mark.parametrize("listing", ["members", "purchases"])
def test_a_manager_exports_the_list_as_filtered(client, shop, listing):
    client = login(client, shop, Role.MANAGER)
    page = client.get(LISTS[listing]).content.decode()
    button = reverse(f"admin:members_{listing[:-1]}_export_list")
    assert button in page

    response = client.get(button, HTTP_REFERER=f"http://testserver{LISTS[listing]}?q=1")

    assert response.status_code == 302
    assert response["Location"] == f"{EXPORTS[listing]}?q=1"


@pytest.mark.parametrize("listing", ["members", "purchases"])
def test_a_clerk_sees_no_export_button(client, shop, listing):
    client = login(client, shop, Role.CLERK)

    page = client.get(LISTS[listing]).content.decode()

    assert reverse(f"admin:members_{listing[:-1]}_export_list") not in page
