"""The webhook admin: owners manage endpoints and send test events; managers
read deliveries; another shop's endpoint is a 404."""

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.urls import reverse

from shops.models import Role, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from shops.services.events import send_test_event
from shops.tenancy import shop_scope
from tests.factories import MembershipFactory, UserFactory, WebhookEndpointFactory
from tests.shops.webhook_receiver import WebhookReceiver, tasks_in_process

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, shop):
    def login(role=Role.OWNER):
        membership = MembershipFactory(shop=shop, role=role, user__is_staff=True)
        client.force_login(membership.user)
        # The shop's default language is Chinese; these tests read English.
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
        return client

    return login


def url(name, *args):
    return reverse(f"admin:shops_{name}", args=args)


def test_owner_adds_an_endpoint_with_chosen_events(staff_client, shop):
    client = staff_client(Role.OWNER)

    response = client.post(
        url("webhookendpoint_add"),
        {
            "url": "https://pos.example.com/hooks",
            "description": "POS",
            "events": ["webhook.test"],
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    with shop_scope(shop):
        endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["webhook.test"]
    assert endpoint.secret.startswith("whsec_")


def test_a_bad_endpoint_is_a_form_error_not_a_crash(staff_client, shop):
    client = staff_client(Role.OWNER)

    response = client.post(
        url("webhookendpoint_add"), {"url": "ftp://example.com", "events": []}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "url" in errors
    assert "events" in errors
    with shop_scope(shop):
        assert not WebhookEndpoint.objects.exists()


def test_the_change_page_shows_the_secret_read_only_and_recent_attempts(
    staff_client, shop, django_capture_on_commit_callbacks
):
    client = staff_client(Role.OWNER)
    with WebhookReceiver(statuses=[500]) as receiver, tasks_in_process():
        endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(url("webhookendpoint_send_test_event", endpoint.pk))
        secret_before = endpoint.secret

        page = client.get(url("webhookendpoint_change", endpoint.pk))
        listing = client.get(url("webhookendpoint_changelist"))
        client.post(
            url("webhookendpoint_change", endpoint.pk),
            {
                "url": receiver.url,
                "events": ["*"],
                "is_active": "on",
                "secret": "whsec_mine",
            },
        )

    html = page.content.decode()
    assert endpoint.secret in html
    assert 'name="secret"' not in html
    assert "HTTP 500" in html
    assert url("webhookendpoint_send_test_event", endpoint.pk) in html
    assert "Retrying" in listing.content.decode()  # the last delivery's status
    endpoint.refresh_from_db()
    assert endpoint.secret == secret_before


def test_owner_sends_a_test_event_from_the_change_page(
    staff_client, shop, django_capture_on_commit_callbacks
):
    client = staff_client(Role.OWNER)
    with WebhookReceiver() as receiver, tasks_in_process():
        endpoint = WebhookEndpointFactory(shop=shop, url=receiver.url, events=[])

        confirm = client.get(url("webhookendpoint_send_test_event", endpoint.pk))
        assert receiver.requests == []  # asking is not sending
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(url("webhookendpoint_send_test_event", endpoint.pk))

    assert confirm.status_code == 200
    assert response.status_code == 302
    assert len(receiver.requests) == 1
    assert receiver.requests[0][0]["Regulars-Event-Type"] == "webhook.test"
    assert any("Test event" in str(m) for m in get_messages(response.wsgi_request))


@pytest.mark.parametrize("role", [Role.MANAGER, Role.CLERK])
def test_managers_and_clerks_cannot_manage_endpoints(staff_client, shop, role):
    client = staff_client(role)
    endpoint = WebhookEndpointFactory(shop=shop)

    assert client.get(url("webhookendpoint_changelist")).status_code == 403
    assert client.get(url("webhookendpoint_change", endpoint.pk)).status_code in (
        403,
        404,
    )
    assert (
        client.post(url("webhookendpoint_send_test_event", endpoint.pk)).status_code
        == 403
    )
    with shop_scope(shop):
        assert not WebhookDelivery.objects.exists()


def test_another_shops_endpoint_is_404_for_an_owner(staff_client, other_shop):
    client = staff_client(Role.OWNER)
    theirs = WebhookEndpointFactory(shop=other_shop)

    assert client.get(url("webhookendpoint_change", theirs.pk)).status_code == 404
    assert (
        client.post(url("webhookendpoint_send_test_event", theirs.pk)).status_code
        == 404
    )
    assert not WebhookDelivery.objects.unscoped().exists()


def test_a_manager_reads_deliveries_and_retries_one(
    staff_client, shop, django_capture_on_commit_callbacks
):
    endpoint = WebhookEndpointFactory(shop=shop, url="http://127.0.0.1:1/hook")
    client = staff_client(Role.MANAGER)
    with tasks_in_process():
        with django_capture_on_commit_callbacks(execute=True):
            send_test_event(endpoint=endpoint)
        delivery = WebhookDelivery.objects.unscoped().get()

        listing = client.get(url("webhookdelivery_changelist"))
        detail = client.get(url("webhookdelivery_change", delivery.pk))
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                url("webhookdelivery_changelist"),
                {"action": "retry_now", "_selected_action": [delivery.pk]},
            )

    assert listing.status_code == 200
    assert detail.status_code == 200
    assert "ConnectionError" in detail.content.decode()
    assert WebhookAttempt.objects.unscoped().filter(delivery=delivery).count() == 2
    assert client.get(url("outboxevent_changelist")).status_code == 200


def test_a_clerk_cannot_see_deliveries(staff_client):
    client = staff_client(Role.CLERK)

    assert client.get(url("webhookdelivery_changelist")).status_code == 403


def test_schedules_are_for_superusers_only(staff_client, client):
    owner = staff_client(Role.OWNER)
    schedules = reverse("admin:django_celery_beat_periodictask_changelist")

    assert owner.get(schedules).status_code == 403

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    assert client.get(schedules).status_code == 200
    assert (
        client.get(reverse("admin:django_celery_beat_periodictask_add")).status_code
        == 200
    )
