"""What surveyors upload is never served back as a page that could run it.

User-supplied text reaches responses in import reports (file names, field
names, values), orthophoto titles and file names, tile layer and collection
names echoed in refusals, and export file names. Pages escape it, data goes out
as JSON (never ``text/html``, always with ``X-Content-Type-Options: nosniff``),
downloads are attachments under names of our own, and the stored uploads
themselves have no URL at all.
"""

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from importers import uploads
from importers.models import ImportBatch
from registry import services
from registry.choices import LandClass
from tests.config.urlconf_walk import routes
from tests.factories import parcel_square
from tests.tilesvc.test_imagery import place_in, write_geotiff
from tilesvc import imagery

pytestmark = pytest.mark.django_db

MARKUP = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def hostile_batch(project, surveyor):
    """A checked batch whose file, fields, values and problems carry markup."""
    return ImportBatch.objects.create(
        project=project,
        layer="parcels",
        created_by=surveyor,
        file_name=f"{MARKUP}.zip",
        sha256="0" * 64,
        size_bytes=1,
        state=ImportBatch.State.CHECKED,
        crs=MARKUP,
        mapping={"layer": "parcels", "fields": {"code": MARKUP}},
        report={
            "accepted": True,
            "counts": {"features": 1, "valid": 1, "rejected": 0, "errors": 0},
            "fields": [MARKUP],
            "preview": [[1, MARKUP]],
            "mapping": {"fields": {"code": MARKUP}},
            "problems": [
                {
                    "row": 1,
                    "code": MARKUP,
                    "field": MARKUP,
                    "severity": "warning",
                    "zh": MARKUP,
                    "en": MARKUP,
                }
            ],
        },
    )


def test_the_import_report_shows_markup_from_the_file_as_text(
    login, surveyor, hostile_batch
):
    response = login(surveyor).get(f"/imports/{hostile_batch.pk}/")

    page = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert MARKUP not in page
    # The file name, the CRS, the field, the value, the mapping, the problem.
    assert page.count(ESCAPED) >= 8


def test_the_import_list_shows_the_file_name_as_text(login, surveyor, hostile_batch):
    page = login(surveyor).get("/imports/").content.decode()

    assert MARKUP not in page
    assert ESCAPED in page


def test_the_import_api_answers_json_even_to_a_browser(login, surveyor, hostile_batch):
    client = login(surveyor)
    for url in (f"/api/imports/{hostile_batch.pk}/", "/api/imports/"):
        response = client.get(url, HTTP_ACCEPT=BROWSER)

        assert response.status_code == 200, url
        assert response["Content-Type"] == "application/json", url
        assert response["X-Content-Type-Options"] == "nosniff", url
    assert response.json()[0]["file_name"] == f"{MARKUP}.zip"


@pytest.mark.parametrize(
    "url",
    [
        "/tiles/%3Cscript%3E.json",
        "/tiles/%3Cscript%3E/14/1/1.mvt",
        "/ogcapi/collections/%3Cscript%3E",
        "/ogcapi/collections/%3Cscript%3E/items",
        "/ogcapi/collections/parcels/items/%3Cscript%3E",
        "/api/projects/%3Cscript%3E/",
        "/api/parcels/?status=%3Cscript%3E",
        "/imagery/999999/tilejson.json",
    ],
)
def test_a_refusal_that_names_what_was_asked_is_json(url, login, planner):
    response = login(planner).get(url, HTTP_ACCEPT=BROWSER)

    assert 400 <= response.status_code < 500
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert json.loads(response.content)["error"]["en"]


def test_an_orthophoto_titled_with_markup_is_text_on_the_page_and_json_elsewhere(
    settings, tmp_path, project, surveyor, planner, login
):
    settings.IMAGERY_DIR = tmp_path / "imagery"
    place = place_in(project)
    orthophoto = imagery.orthophoto_ingest(
        project=project,
        upload_path=write_geotiff(
            tmp_path / "ortho.tif", west=place.west, north=place.north
        ),
        name=f"{MARKUP}.tif",
        title=MARKUP,
        actor=surveyor,
    )
    client = login(planner)

    listing = client.get(f"/imagery/projects/{project.pk}/")
    tilejson = client.get(f"/imagery/{orthophoto.pk}/tilejson.json")
    status = client.get(f"/imagery/{orthophoto.pk}.json")

    assert MARKUP not in listing.content.decode()
    assert ESCAPED in listing.content.decode()
    for response in (tilejson, status):
        assert response["Content-Type"] == "application/json"
        assert response["X-Content-Type-Options"] == "nosniff"
    assert tilejson.json()["name"] == MARKUP
    assert status.json()["source_name"] == f"{MARKUP}.tif"
    assert "file" not in status.json()  # where the COG lies stays private


@pytest.mark.parametrize(
    ("url", "filename"),
    [
        (f"/api/exports/banked/?format=geojson&project={MARKUP}", "banked.geojson"),
        (f"/api/exports/banked/?format=csv&project={MARKUP}", "banked-csv.zip"),
        ("/api/exports/banked/?format=csv&status=all", "parcels-csv.zip"),
        ("/dashboard/progress.csv", "progress.csv"),
        ("/audit/records.csv", "audit.csv"),
    ],
)
def test_downloads_are_attachments_under_names_of_our_own(
    url, filename, login, registry_admin, project
):
    services.parcel_create(
        code=MARKUP,
        land_class=LandClass.COLLECTIVE,
        geom=parcel_square(project, 0, 40),
        actor=registry_admin,
        project=project,
    )

    response = login(registry_admin).get(url)
    if response.streaming:
        b"".join(response.streaming_content)

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert not response["Content-Type"].startswith("text/html")


def test_no_route_serves_files_from_disk():
    serving = [r.route for r in routes() if r.view == "django.views.static.serve"]

    assert serving == []


def test_the_private_directories_are_outside_everything_served():
    served = [Path(settings.STATIC_ROOT).resolve()]
    for finder in finders.get_finders():
        for _path, storage in finder.list([]):
            served.append(Path(storage.location).resolve())
    private = [
        Path(settings.IMPORT_UPLOAD_DIR).resolve(),
        Path(settings.IMAGERY_DIR).resolve(),
        Path(settings.MEDIA_ROOT).resolve(),
    ]
    for directory in private:
        for root in set(served):
            assert not directory.is_relative_to(root), (directory, root)


def test_a_stored_upload_has_no_url(settings, tmp_path, login, registry_admin):
    settings.IMPORT_UPLOAD_DIR = tmp_path / "var" / "uploads"
    stored = uploads.store(
        SimpleUploadedFile("survey.html", f"<html>{MARKUP}</html>".encode())
    )
    relative = stored.relative_to(tmp_path)
    under_uploads = stored.relative_to(settings.IMPORT_UPLOAD_DIR)
    client = login(registry_admin)

    for url in (
        f"/{relative}",
        f"/{under_uploads}",
        f"/uploads/{under_uploads}",
        f"/media/{under_uploads}",
        f"/static/{under_uploads}",
        f"/static/../{relative}",
        f"/var/uploads/{under_uploads}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert MARKUP.encode() not in response.content, url
    assert stored.read_bytes().startswith(b"<html>")


def test_a_page_not_found_does_not_echo_the_address(login, planner):
    response = login(planner).get(f"/no-such-page/{MARKUP}")

    assert response.status_code == 404
    assert b"<script>" not in response.content
    assert response["X-Content-Type-Options"] == "nosniff"


def test_every_response_carries_nosniff_even_anonymous_ones():
    for url in ("/accounts/login/", "/api/parcels/", "/tiles/parcels.json", "/"):
        assert Client().get(url)["X-Content-Type-Options"] == "nosniff", url


FORMULA = '=HYPERLINK("http://x.invalid","点击")'


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_a_parcel_code_from_a_survey_file_is_exported_as_text_not_a_formula(
    login, analyst, project, registry_admin
):
    services.parcel_create(
        code=FORMULA,
        land_class=LandClass.COLLECTIVE,
        geom=parcel_square(project, 0, 40),
        actor=registry_admin,
        project=project,
    )

    response = login(analyst).get("/api/exports/banked/?format=csv&status=all")

    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        rows = csv_rows(archive.read("banked.csv").decode("utf-8"))
    code = rows[0].index("code")
    assert [row[code] for row in rows[1:]] == ["'" + FORMULA]


def test_the_dashboard_csv_shows_a_project_name_as_text(login, planner, project):
    project.name_zh = "=1+1"
    project.save()

    rows = csv_rows(login(planner).get("/dashboard/progress.csv").content.decode())

    assert [row[1] for row in rows[1:]] == ["'=1+1"]


def test_the_audit_csv_shows_a_clients_user_agent_as_text(login, registry_admin):
    client = login(registry_admin, language="en")
    # Issuing a token is recorded, with the client's own words for itself.
    client.post("/accounts/token/", {"action": "issue"}, HTTP_USER_AGENT=FORMULA)

    response = client.get("/audit/records.csv")
    rows = csv_rows(b"".join(response.streaming_content).decode())

    agents = [row[rows[0].index("user agent")] for row in rows[1:]]
    assert "'" + FORMULA in agents
    assert FORMULA not in agents
