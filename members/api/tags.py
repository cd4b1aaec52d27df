"""API of the members app: tags."""

api_urlpatterns: list = []
