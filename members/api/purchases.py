"""API of the members app: purchases."""

api_urlpatterns: list = []
