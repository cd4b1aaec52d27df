from .api import ApiKey, ApiKeyScope, IdempotencyRecord
from .events import (
    OutboxEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from .tenants import (
    BulkTenantModel,
    Role,
    Shop,
    StaffMembership,
    StaffStoreAccess,
    Store,
    TenantJob,
    TenantModel,
    User,
)

__all__ = [
    "ApiKey",
    "ApiKeyScope",
    "BulkTenantModel",
    "IdempotencyRecord",
    "OutboxEvent",
    "Role",
    "Shop",
    "StaffMembership",
    "StaffStoreAccess",
    "Store",
    "TenantJob",
    "TenantModel",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
]
