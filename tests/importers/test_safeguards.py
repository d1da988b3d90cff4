"""What an import may not do: take over, rewrite settled land, guess, or misname."""

import datetime
import zipfile

import pytest
import time_machine
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from shapely.geometry import box

from importers import pipeline
from importers.models import ImportBatch
from registry import statistics
from registry.choices import Role
from registry.models import Building, Parcel
from registry.workflow import Status
from tests.factories import BuildingFactory, ParcelFactory, user_with_role
from tests.importers import corpus
from tests.importers.helpers import DATABASES, registry_state, reported, run_import

pytestmark = pytest.mark.django_db(databases=DATABASES)


def shrunk_first_parcel() -> list[dict]:
    """Return the corpus parcels with the first re-surveyed 1 m smaller all round."""
    moved = [dict(p) for p in corpus.PARCELS]
    moved[0]["geometry"] = moved[0]["geometry"].buffer(-1, join_style="mitre")
    moved[0]["declared_area"] = round(moved[0]["geometry"].area, 2)
    return moved


def test_a_building_code_of_another_project_is_refused_not_taken_over(
    corpus_dir, project, other_project, surveyor, registry_admin
):
    run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor, commit=True
    )
    elsewhere = ParcelFactory(
        project=other_project,
        geom=MultiPolygon(
            GEOSGeometry(box(499000, 2511000, 499040, 2511040).wkt, srid=4547),
            srid=4547,
        ),
    )
    code = corpus.BUILDINGS[0]["code"]
    BuildingFactory(parcel=elsewhere, code=code, status="demolished")
    before = registry_state()

    batch = run_import(
        corpus.buildings_zip(corpus_dir),
        project=project,
        actor=surveyor,
        commit=True,
        layer="buildings",
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert f"The code is already registered in project {other_project.code}." in [
        p[4] for p in reported(batch)
    ]
    assert Building.objects.get(code=code).parcel == elsewhere
    assert registry_state() == before


def test_the_commit_is_recorded_as_made_by_who_committed(corpus_dir, project, surveyor):
    colleague = user_with_role(Role.SURVEYOR, project, username="colleague")
    batch = pipeline.new_batch(
        path=corpus.shapefile_zip(corpus_dir),
        name="parcels.zip",
        project=project,
        actor=surveyor,
        options=pipeline.Options(),
    )
    committed = pipeline.run(batch, commit=True, actor=colleague)
    assert (committed.created_by, committed.committed_by) == (surveyor, colleague)
    creation = Parcel.objects.get(code="GM-T-0001").history.get()
    assert creation.actor == colleague


def test_a_mapping_naming_an_unknown_class_reports_rows_instead_of_failing(
    corpus_dir, project, surveyor
):
    mapping = {
        "fields": {"code": "DKBM", "land_class": "QSXZ"},
        "values": {"land_class": {"集体": "bogus"}},
    }
    batch = run_import(
        corpus.shapefile_zip(corpus_dir),
        project=project,
        actor=surveyor,
        commit=True,
        mapping=mapping,
    )
    assert batch.state == ImportBatch.State.REFUSED
    assert {p[4] for p in reported(batch)} == {
        "Unknown land class “集体”; map it to one of the three."
    }
    assert not Parcel.objects.exists()


def test_a_zip_with_two_datasets_is_refused_naming_both(corpus_dir, project, surveyor):
    first = corpus.geojson(corpus_dir)
    upload = corpus_dir / "two.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        archive.write(first, "a.geojson")
        archive.write(first, "b.geojson")

    batch = run_import(upload, project=project, actor=surveyor)

    assert batch.report["refusal"]["en"] == (
        "two.zip holds several datasets (a.geojson, b.geojson); upload one at a time."
    )


def test_cleared_land_is_re_surveyed_only_by_a_registry_admin(
    corpus_dir, project, surveyor, registry_admin
):
    original = corpus.shapefile_zip(corpus_dir)
    run_import(original, project=project, actor=surveyor, commit=True)
    Parcel.objects.filter(code="GM-T-0001").update(status=Status.CLEARED)
    moved = shrunk_first_parcel()
    resurvey = corpus.shapefile_zip(corpus_dir / "moved", parcels=moved)

    again = run_import(original, project=project, actor=surveyor, commit=True)
    by_surveyor = run_import(resurvey, project=project, actor=surveyor, commit=True)
    by_admin = run_import(resurvey, project=project, actor=registry_admin, commit=True)

    assert (again.state, again.unchanged) == ("committed", 6)
    assert by_surveyor.state == ImportBatch.State.REFUSED
    assert reported(by_surveyor)[0][4] == (
        "Parcel GM-T-0001 is already “Vacated and cleared”; only a registry "
        "administrator may re-survey it."
    )
    assert (by_admin.state, by_admin.updated) == ("committed", 1), reported(by_admin)


def test_as_of_between_a_resurvey_and_its_undo_the_resurveyed_area_counts(
    corpus_dir, project, surveyor, registry_admin
):
    moments = [
        datetime.datetime(2025, m, 1, 10, tzinfo=datetime.UTC) for m in (1, 3, 5)
    ]
    moved = shrunk_first_parcel()
    with time_machine.travel(moments[0], tick=False):
        run_import(
            corpus.shapefile_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
        )
    with time_machine.travel(moments[1], tick=False):
        resurvey = run_import(
            corpus.shapefile_zip(corpus_dir / "moved", parcels=moved),
            project=project,
            actor=surveyor,
            commit=True,
        )
        assert resurvey.state == "committed", reported(resurvey)
        live = statistics.summarise(statistics.area_cells()).area_m2
    with time_machine.travel(moments[2], tick=False):
        pipeline.undo(resurvey, actor=registry_admin)

    between = datetime.datetime(2025, 4, 1, tzinfo=datetime.UTC)
    after = statistics.summarise(statistics.area_cells()).area_m2
    assert statistics.summarise(statistics.area_cells(as_of=between)).area_m2 == (
        pytest.approx(live)
    )
    assert after > live  # the undo gave the larger original geometry back


def test_a_mapping_saved_for_one_project_is_not_applied_to_another(
    corpus_dir, project, other_project, surveyor, registry_admin
):
    from importers.mapping import source_key
    from importers.models import SavedMapping

    SavedMapping.objects.create(
        project=other_project,
        name="elsewhere",
        layer="parcels",
        source_key=source_key(["DKBM", "QSXZ", "MJ", "BZ"]),
        mapping={
            "layer": "parcels",
            "fields": {"code": "DKBM", "land_class": "QSXZ"},
            "values": {"land_class": {"集体": "state_farm"}},
        },
        created_by=registry_admin,
    )
    batch = run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
    )
    assert batch.mapping["values"] == {}
    assert batch.mapping["fields"]["declared_area"] == "MJ"  # proposed, not saved
