"""API of the members app: members."""

api_urlpatterns: list = []
