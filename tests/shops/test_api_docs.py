import re


def test_the_api_docs_load_nothing_from_another_site(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', response.content.decode())
    assert assets, "the page names its scripts and styles"
    assert [a for a in assets if not a.startswith("/")] == []


def test_the_schema_is_public_openapi_3(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
