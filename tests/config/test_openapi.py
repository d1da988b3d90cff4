"""The API's OpenAPI 3 description and its documentation page, served locally."""

import pytest
import yaml


@pytest.mark.django_db
def test_the_schema_describes_every_api(login, planner):
    response = login(planner).get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/parcels/",
        "/api/parcels/{id}/",
        "/api/parcels/{id}/transition/",
        "/api/parcels/transition/",
        "/api/parcels/search/",
        "/api/buildings/",
        "/api/projects/",
        "/api/projects/{code}/",
        "/api/imports/",
        "/api/statistics/progress/",
        "/ogcapi/collections/{collection_id}/items",
    ):
        assert path in paths, path
    parameters = {p["name"] for p in paths["/api/parcels/"]["get"]["parameters"]}
    assert {"bbox", "bbox-crs", "point", "status", "cursor", "limit"} <= parameters


@pytest.mark.django_db
def test_the_json_schema_is_what_the_ogc_landing_page_links(login, planner):
    client = login(planner)
    landing = client.get("/ogcapi/").json()
    service_desc = next(x for x in landing["links"] if x["rel"] == "service-desc")

    response = client.get(service_desc["href"])

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


@pytest.mark.django_db
def test_the_docs_page_uses_only_local_static_files(login, planner):
    page = login(planner).get("/api/docs/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    for source in ('src="http', 'href="http', "//cdn", "unpkg", "jsdelivr"):
        assert source not in html


@pytest.mark.django_db
def test_the_schema_and_docs_need_a_login(client):
    for url in ("/api/schema/", "/api/schema.json", "/api/docs/"):
        assert client.get(url).status_code in (302, 401, 403), url


def test_the_schema_is_valid_openapi_without_a_warning(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn: a view whose parameters or body cannot be described fails
    # here, not in a client generated from the schema.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s")
    )
    assert (tmp_path / "s").read_text().startswith("openapi: 3.")
