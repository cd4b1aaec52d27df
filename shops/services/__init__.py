"""Every write a user can cause in the shops app, as plain functions.

`tenants`: sign-up, stores, staff, API keys. `events`: the outbox and webhooks.
"""
