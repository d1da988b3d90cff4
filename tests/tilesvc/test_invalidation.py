"""A cached tile is renewed exactly when what is under it changes.

A stale tile after a status change is a bug: the planner would see land as
uncleared that the case officer has just cleared. Tests run inside a transaction,
so each change runs under ``committed``, which runs the on-commit callbacks as a
real commit would (and only then: a rolled-back change announces nothing).
"""

from types import SimpleNamespace

import mapbox_vector_tile
import pytest
from django.utils import timezone

from registry import resurvey, services
from registry.choices import BuildingStatus
from registry.workflow import Status
from tests.factories import BuildingFactory, ParcelFactory, parcel_square
from tests.tilesvc.conftest import tile_of


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def parcels(project):
    here = ParcelFactory(code="SC-1", project=project, status=Status.SIGNED)
    far = ParcelFactory(code="SC-9", project=project, position=99)
    return here, far


def statuses(response) -> dict[str, str]:
    assert response.status_code == 200, response.status_code
    layer = next(iter(mapbox_vector_tile.decode(response.content).values()))
    return {
        f["properties"]["code"]: f["properties"]["status"] for f in layer["features"]
    }


def url_of(where, z=17, layer="parcels"):
    """Return the URL of the tile under a parcel (or a geometry)."""
    tile = tile_of(getattr(where, "geom", where), z)
    return f"/tiles/{layer}/{z}/{tile.x}/{tile.y}.mvt"


def test_a_status_change_renews_the_tiles_under_the_parcel(
    committed, login, planner, case_officer, parcels
):
    here, far = parcels
    client = login(planner)
    for z in (12, 15, 17, 18):
        client.get(url_of(here, z))
    far_tile = client.get(url_of(far))
    assert statuses(client.get(url_of(here)))["SC-1"] == "signed"

    with committed():
        services.parcel_transition(parcel=here, to_status="cleared", actor=case_officer)

    after = client.get(url_of(here))
    assert after["X-Tile-Cache"] == "miss"
    assert statuses(after)["SC-1"] == "cleared"
    for z in (15, 18):
        assert client.get(url_of(here, z))["X-Tile-Cache"] == "miss"
    untouched = client.get(url_of(far))
    assert untouched["X-Tile-Cache"] == "hit"  # nothing changed under it
    assert untouched["ETag"] == far_tile["ETag"]


def test_a_refused_change_renews_nothing(
    committed, login, planner, case_officer, parcels
):
    here, _ = parcels
    client = login(planner)
    client.get(url_of(here))

    with committed(), pytest.raises(Exception, match="workflow"):
        services.parcel_transition(parcel=here, to_status="banked", actor=case_officer)

    assert client.get(url_of(here))["X-Tile-Cache"] == "hit"


def test_a_bulk_change_renews_every_parcels_tiles(
    committed, login, planner, case_officer, parcels
):
    here, far = parcels
    client = login(planner)
    client.get(url_of(here))
    client.get(url_of(far))

    with committed():
        services.parcel_transition_bulk(
            parcels=[here.pk], to_status="cleared", actor=case_officer
        )

    assert statuses(client.get(url_of(here)))["SC-1"] == "cleared"
    assert client.get(url_of(far))["X-Tile-Cache"] == "hit"


def test_a_building_change_renews_the_building_tiles(
    committed, login, planner, case_officer, parcels
):
    here, _ = parcels
    building = BuildingFactory(parcel=here, code="B-1")
    client = login(planner)
    assert statuses(client.get(url_of(here, layer="buildings")))["B-1"] == "unsigned"

    with committed():
        services.building_set_status(
            building=building, to_status=BuildingStatus.SIGNED, actor=case_officer
        )

    assert statuses(client.get(url_of(here, layer="buildings")))["B-1"] == "signed"


def test_an_import_and_its_undo_renew_the_old_and_new_places(
    committed, login, planner, surveyor, registry_admin, project, parcels
):
    here, _ = parcels
    moved_to = parcel_square(project, 50, 40.0)
    client = login(planner)
    old_place, new_place = url_of(here), url_of(moved_to)
    assert "SC-1" in statuses(client.get(old_place))
    assert client.get(new_place).status_code == 204

    with committed():
        resurvey.survey_apply(
            project=project,
            parcels=resurvey.SurveyedParcels(
                codes=["SC-1"],
                land_classes=[here.land_class],
                declared_areas=[None],
                ewkb=[moved_to.ewkb.hex()],
            ),
            actor=surveyor,
            import_batch_id=7,
            at=timezone.now(),
        )

    assert client.get(old_place).status_code == 204  # it left
    assert "SC-1" in statuses(client.get(new_place))  # and arrived

    with committed():
        resurvey.survey_undo(import_batch_id=7, actor=registry_admin, at=timezone.now())

    assert "SC-1" in statuses(client.get(old_place))
    assert client.get(new_place).status_code == 204


def test_renaming_a_project_in_the_admin_redraws_its_land(
    committed, login, planner, registry_admin, project, parcels, rf
):
    from registry.admin import ProjectAdmin, admin_site
    from registry.models import Project

    here, _ = parcels
    BuildingFactory(parcel=here, code="B-9")
    client = login(planner)

    def projects_shown(layer):
        response = client.get(url_of(here, layer=layer))
        found = next(iter(mapbox_vector_tile.decode(response.content).values()))
        return {f["properties"]["project"] for f in found["features"]}

    assert projects_shown("parcels") == {"GM-SC"}
    assert projects_shown("buildings") == {"GM-SC"}

    renamed = Project.objects.get(pk=project.pk)
    renamed.code = "GM-SC2"
    request = rf.post("/admin/")
    request.user = registry_admin
    # What the admin's form says changed (only the code: no geometry to audit).
    form = SimpleNamespace(changed_data=["code"], initial={})
    with committed():
        ProjectAdmin(Project, admin_site).save_model(request, renamed, form, True)

    assert projects_shown("parcels") == {"GM-SC2"}
    assert projects_shown("buildings") == {"GM-SC2"}
