"""Committing, re-importing, re-surveying and undoing survey imports.

A commit is one transaction: a new code becomes a parcel in ``surveyed`` with its
creation in the history; a known code whose geometry or attributes changed is
updated and keeps its previous values as a ``ParcelRevision``; an identical row
is left alone. Status is never changed by an import. A committed batch can be
undone, by a registry admin, while nothing later touched its parcels.
"""

import hashlib

import pytest
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from shapely.geometry import box

from importers import pipeline
from importers.errors import ImportRefused
from importers.models import ImportBatch
from registry import services
from registry.errors import PermissionRefused, TransitionRefused
from registry.models import (
    Building,
    Parcel,
    ParcelRevision,
    ParcelStatusChange,
)
from registry.resurvey import survey_apply
from registry.workflow import Status
from tests.factories import ParcelFactory
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    SIX_VALID,
    assert_chinese,
    registry_state,
    reported,
    run_import,
    stored_geometry,
)

pytestmark = pytest.mark.django_db(databases=DATABASES)

CODES = [parcel["code"] for parcel in corpus.PARCELS]


def resurvey_of_the_corpus() -> list[dict]:
    """Return the corpus re-surveyed: two parcels changed, one new, three alike.

    GM-T-0001 moved 0.5 m west; GM-T-0003 grown 5 m north, now collective land;
    GM-T-0007 is new, 15 m east of GM-T-0003.
    """
    parcels = [dict(parcel) for parcel in corpus.PARCELS]
    parcels[0]["geometry"] = box(492099.5, 2517200.0, 492159.5, 2517260.0)
    grown = box(492600.0, 2517600.0, 492645.0, 2517675.0)
    parcels[2].update(geometry=grown, declared_area=grown.area, land_class_zh="集体")
    new = box(492660.0, 2517600.0, 492690.0, 2517630.0)
    parcels.append(corpus._parcel("GM-T-0007", "农场", "新增 / 光明农场", new))
    return parcels


@pytest.fixture
def first_import(corpus_dir, project, surveyor):
    """Commit the six corpus parcels."""
    batch = run_import(
        corpus.shapefile_zip(corpus_dir / "first"),
        project=project,
        actor=surveyor,
        commit=True,
    )
    assert batch.state == ImportBatch.State.COMMITTED
    return batch


def resurvey(corpus_dir, project, surveyor) -> ImportBatch:
    return run_import(
        corpus.shapefile_zip(corpus_dir / "resurvey", parcels=resurvey_of_the_corpus()),
        project=project,
        actor=surveyor,
        commit=True,
    )


class TestCommit:
    def test_a_dry_run_writes_nothing(self, corpus_dir, project, surveyor):
        before = registry_state()

        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        assert batch.state == ImportBatch.State.CHECKED
        assert batch.report["accepted"] is True
        assert batch.report["counts"] == SIX_VALID
        assert (batch.created, batch.updated, batch.unchanged) == (0, 0, 0)
        assert batch.committed_at is None
        assert registry_state() == before

    def test_a_clean_file_creates_surveyed_parcels_with_their_history(
        self, corpus_dir, project, surveyor
    ):
        upload = corpus.shapefile_zip(corpus_dir)

        batch = run_import(upload, project=project, actor=surveyor, commit=True)

        assert batch.state == ImportBatch.State.COMMITTED
        assert (batch.created, batch.updated, batch.unchanged, batch.rejected) == (
            6,
            0,
            0,
            0,
        )
        assert batch.features == 6
        assert batch.sha256 == hashlib.sha256(upload.read_bytes()).hexdigest()
        assert batch.size_bytes == upload.stat().st_size
        assert batch.file_name == "parcels.zip"
        assert batch.committed_by == surveyor
        assert batch.committed_at is not None
        parcels = Parcel.objects.order_by("code")
        assert [
            (p.code, p.project, p.status, p.land_class, p.declared_area_m2)
            for p in parcels
        ] == [
            (
                parcel["code"],
                project,
                Status.SURVEYED,
                corpus.LAND_CLASSES[parcel["land_class_zh"]],
                parcel["declared_area"],
            )
            for parcel in corpus.PARCELS
        ]
        assert {p.street for p in parcels} == {project.street}
        history = ParcelStatusChange.objects.order_by("parcel__code")
        assert [
            (h.parcel.code, h.move, h.from_status, h.to_status, h.actor, h.evidence_ref)
            for h in history
        ] == [
            (code, "create", "", "surveyed", surveyor, f"import:{batch.pk}")
            for code in CODES
        ]

    def test_a_checked_batch_commits_later(self, corpus_dir, project, surveyor):
        checked = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        committed = pipeline.run(checked, commit=True)

        assert committed.state == ImportBatch.State.COMMITTED
        assert committed.created == 6
        assert Parcel.objects.count() == 6

    def test_reimporting_the_same_file_changes_nothing(
        self, first_import, corpus_dir, project, surveyor
    ):
        before = registry_state()

        again = run_import(
            corpus.shapefile_zip(corpus_dir / "first"),
            project=project,
            actor=surveyor,
            commit=True,
        )

        assert again.state == ImportBatch.State.COMMITTED
        assert again.sha256 == first_import.sha256
        assert (again.created, again.updated, again.unchanged) == (0, 0, 6)
        assert registry_state() == before

    def test_a_failure_during_the_commit_leaves_nothing_half_written(
        self, first_import, corpus_dir, project, surveyor, monkeypatch
    ):
        def write_then_fail(**kwargs):
            survey_apply(**kwargs)
            assert Parcel.objects.filter(code="GM-T-0007").exists()
            raise RuntimeError("the server lost power")

        monkeypatch.setattr(pipeline, "survey_apply", write_then_fail)
        before = registry_state()
        batch = pipeline.new_batch(
            path=corpus.shapefile_zip(
                corpus_dir / "resurvey", parcels=resurvey_of_the_corpus()
            ),
            name="resurvey.zip",
            project=project,
            actor=surveyor,
            options=pipeline.Options(),
        )

        with pytest.raises(RuntimeError):
            pipeline.run(batch, commit=True)

        assert registry_state() == before
        batch.refresh_from_db()
        assert batch.state == ImportBatch.State.FAILED
        assert batch.error == (
            "导入失败 / import failed: RuntimeError: the server lost power"
        )
        assert (batch.created, batch.updated, batch.committed_at) == (0, 0, None)

    def test_codes_registered_in_another_project_are_refused(
        self, corpus_dir, project, other_project, surveyor
    ):
        ParcelFactory(
            project=other_project,
            code="GM-T-0003",
            geom=MultiPolygon(
                GEOSGeometry(box(499000, 2511000, 499040, 2511040).wkt, srid=4547),
                srid=4547,
            ),
        )
        before = registry_state()

        batch = run_import(
            corpus.shapefile_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
        )

        assert batch.state == ImportBatch.State.REFUSED
        assert reported(batch) == [
            (
                3,
                "GM-T-0003",
                "DKBM",
                "error",
                "The code is already registered in project GM-L6.",
            )
        ]
        assert registry_state() == before

    def test_codes_registered_in_another_project_are_refused_by_the_check(
        self, corpus_dir, project, other_project, surveyor
    ):
        ParcelFactory(
            project=other_project,
            code="GM-T-0003",
            geom=MultiPolygon(
                GEOSGeometry(box(499000, 2511000, 499040, 2511040).wkt, srid=4547),
                srid=4547,
            ),
        )

        batch = run_import(
            corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
        )

        assert batch.state == ImportBatch.State.REFUSED
        assert "GM-L6" in str(batch.report)


class TestValidOnly:
    def test_valid_rows_only_imports_the_valid_rows(
        self, corpus_dir, project, surveyor
    ):
        batch = run_import(
            corpus.with_unknown_land_class(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            valid_only=True,
        )

        assert batch.state == ImportBatch.State.COMMITTED
        assert batch.report["accepted"] is True
        assert batch.report["counts"] == {
            "features": 6,
            "valid": 5,
            "rejected": 1,
            "errors": 1,
            "warnings": 0,
        }
        assert (batch.created, batch.rejected) == (5, 1)
        assert sorted(Parcel.objects.values_list("code", flat=True)) == CODES[:5]

    def test_valid_rows_only_still_refuses_a_file_without_valid_rows(
        self, corpus_dir, project, surveyor
    ):
        before = registry_state()

        batch = run_import(
            corpus.with_points(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            valid_only=True,
        )

        assert batch.state == ImportBatch.State.REFUSED
        assert batch.report["counts"]["rejected"] == 6
        assert registry_state() == before

    def test_valid_rows_only_changes_nothing_for_a_clean_file(
        self, corpus_dir, project, surveyor
    ):
        batch = run_import(
            corpus.shapefile_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            valid_only=True,
        )

        assert batch.state == ImportBatch.State.COMMITTED
        assert batch.created == 6

    def test_valid_rows_only_does_not_override_a_file_level_error(
        self, corpus_dir, project, surveyor
    ):
        before = registry_state()

        batch = run_import(
            corpus.with_dbf_shp_mismatch(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            valid_only=True,
        )

        assert batch.state == ImportBatch.State.REFUSED
        assert registry_state() == before


class TestResurvey:
    def test_a_resurvey_updates_and_keeps_the_old_geometry(
        self, first_import, corpus_dir, project, surveyor, case_officer
    ):
        declared = Parcel.objects.get(code="GM-T-0003")
        services.parcel_transition(
            parcel=declared, to_status=Status.DECLARED, actor=case_officer
        )
        previous = {code: stored_geometry(code) for code in CODES}
        history_before = list(
            ParcelStatusChange.objects.values_list("pk", "parcel__code", "to_status")
        )

        batch = resurvey(corpus_dir, project, surveyor)

        assert batch.state == ImportBatch.State.COMMITTED
        assert (batch.created, batch.updated, batch.unchanged) == (1, 2, 4)
        revisions = ParcelRevision.objects.filter(import_batch_id=batch.pk)
        assert sorted(
            (r.parcel.code, r.kind, r.old_land_class, r.old_declared_area_m2, r.actor)
            for r in revisions
        ) == [
            ("GM-T-0001", "updated", "collective", 3600.0, surveyor),
            ("GM-T-0003", "updated", "state_farm", 3150.0, surveyor),
        ]
        for revision in revisions:
            assert revision.old_geom.equals_exact(previous[revision.parcel.code], 0)
        assert stored_geometry("GM-T-0001").extent == (
            492099.5,
            2517200.0,
            492159.5,
            2517260.0,
        )
        grown = Parcel.objects.get(code="GM-T-0003")
        assert (grown.land_class, grown.declared_area_m2, grown.area_m2) == (
            "collective",
            3375.0,
            pytest.approx(3375.0),
        )
        # Status is never changed by an import.
        assert grown.status == Status.DECLARED
        assert dict(Parcel.objects.values_list("code", "status")) == {
            **dict.fromkeys(CODES, Status.SURVEYED),
            "GM-T-0003": Status.DECLARED,
            "GM-T-0007": Status.SURVEYED,
        }
        new_history = ParcelStatusChange.objects.exclude(
            pk__in=[pk for pk, *_ in history_before]
        )
        assert [
            (h.parcel.code, h.move, h.to_status, h.evidence_ref) for h in new_history
        ] == [("GM-T-0007", "create", "surveyed", f"import:{batch.pk}")]
        assert (
            list(
                ParcelStatusChange.objects.filter(
                    pk__in=[pk for pk, *_ in history_before]
                ).values_list("pk", "parcel__code", "to_status")
            )
            == history_before
        )


class TestUndo:
    def test_undo_restores_the_state_before_the_import(
        self, first_import, corpus_dir, project, surveyor, registry_admin
    ):
        before = registry_state()
        batch = resurvey(corpus_dir, project, surveyor)

        undone = pipeline.undo(batch, actor=registry_admin)

        assert undone.state == ImportBatch.State.UNDONE
        assert undone.undone_by == registry_admin
        assert undone.undone_at is not None
        after = registry_state()
        assert {**after, "revisions": None} == {**before, "revisions": None}
        assert sorted(
            ParcelRevision.objects.filter(import_batch_id=batch.pk).values_list(
                "parcel__code", "kind"
            )
        ) == [
            ("GM-T-0001", "undone"),
            ("GM-T-0001", "updated"),
            ("GM-T-0003", "undone"),
            ("GM-T-0003", "updated"),
        ]
        assert not Parcel.objects.filter(code="GM-T-0007").exists()

    def test_undoing_a_first_import_removes_its_parcels_and_their_history(
        self, first_import, registry_admin
    ):
        pipeline.undo(first_import, actor=registry_admin)

        assert registry_state() == {
            "parcels": 0,
            "history": 0,
            "revisions": 0,
            "buildings": 0,
            "geometries": {},
            "statuses": {},
            "land_classes": {},
        }

    def test_undo_is_refused_after_a_later_status_change(
        self, first_import, case_officer, registry_admin
    ):
        services.parcel_transition(
            parcel=Parcel.objects.get(code="GM-T-0002"),
            to_status=Status.DECLARED,
            actor=case_officer,
        )
        before = registry_state()

        with pytest.raises(TransitionRefused) as refused:
            pipeline.undo(first_import, actor=registry_admin)

        assert refused.value.en == (
            "The import cannot be undone: these parcels changed after it (GM-T-0002)."
        )
        assert_chinese(refused.value.zh, refused.value.en)
        assert registry_state() == before
        first_import.refresh_from_db()
        assert first_import.state == ImportBatch.State.COMMITTED

    def test_undo_is_refused_after_a_later_resurvey(
        self, first_import, corpus_dir, project, surveyor, registry_admin
    ):
        resurvey(corpus_dir, project, surveyor)
        before = registry_state()

        with pytest.raises(TransitionRefused) as refused:
            pipeline.undo(first_import, actor=registry_admin)

        assert refused.value.en == (
            "The import cannot be undone: these parcels changed after it "
            "(GM-T-0001, GM-T-0003)."
        )
        assert registry_state() == before

    def test_undo_is_refused_while_buildings_stand_on_its_parcels(
        self, first_import, corpus_dir, project, surveyor, registry_admin
    ):
        run_import(
            corpus.buildings_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            layer="buildings",
        )
        before = registry_state()

        with pytest.raises(TransitionRefused) as refused:
            pipeline.undo(first_import, actor=registry_admin)

        assert refused.value.en == (
            "The import cannot be undone: these parcels changed after it "
            "(GM-T-0001, GM-T-0002, GM-T-0003, GM-T-0004)."
        )
        assert registry_state() == before

    @pytest.mark.parametrize("persona", ["surveyor", "case_officer", "planner"])
    def test_only_registry_admins_may_undo(self, persona, first_import, request):
        before = registry_state()

        with pytest.raises(PermissionRefused) as refused:
            pipeline.undo(first_import, actor=request.getfixturevalue(persona))

        assert refused.value.en == "Only registry administrators may undo an import."
        assert_chinese(refused.value.zh, refused.value.en)
        assert registry_state() == before
        first_import.refresh_from_db()
        assert first_import.state == ImportBatch.State.COMMITTED

    def test_only_committed_batches_can_be_undone(
        self, corpus_dir, project, surveyor, registry_admin
    ):
        refused_batch = run_import(
            corpus.with_points(corpus_dir), project=project, actor=surveyor
        )

        with pytest.raises(ImportRefused) as refused:
            pipeline.undo(refused_batch, actor=registry_admin)

        assert refused.value.en == (
            f"Batch #{refused_batch.pk} is Refused; only committed imports can be "
            "undone."
        )
        assert_chinese(refused.value.zh, refused.value.en)

    def test_a_batch_is_undone_once(self, first_import, registry_admin):
        undone = pipeline.undo(first_import, actor=registry_admin)

        with pytest.raises(ImportRefused) as refused:
            pipeline.undo(undone, actor=registry_admin)

        assert refused.value.en == (
            f"Batch #{first_import.pk} is Undone; only committed imports can be undone."
        )

    def test_a_batch_is_undone_once_even_by_two_requests(
        self, first_import, registry_admin
    ):
        # Two requests that both read the batch while it was still committed.
        second_request = ImportBatch.objects.get(pk=first_import.pk)
        pipeline.undo(first_import, actor=registry_admin)

        with pytest.raises(ImportRefused):
            pipeline.undo(second_request, actor=registry_admin)

    def test_building_imports_are_not_undone_here(
        self, first_import, corpus_dir, project, surveyor, registry_admin
    ):
        buildings = run_import(
            corpus.buildings_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            layer="buildings",
        )

        with pytest.raises(ImportRefused) as refused:
            pipeline.undo(buildings, actor=registry_admin)

        assert refused.value.en == (
            "Building imports cannot be undone here: buildings keep no previous "
            "footprint. Import the corrected file instead."
        )
        assert Building.objects.count() == 4


BUILDINGS = {
    "GM-T-0001-J01": ("GM-T-0001", 3, 360.0, "permitted", "original_villager"),
    "GM-T-0002-J01": ("GM-T-0002", 5, 1125.0, "historical_legacy", "original_villager"),
    "GM-T-0003-J01": ("GM-T-0003", 2, 432.0, "unpermitted_0962", "state_farm_worker"),
    "GM-T-0004-J01": ("GM-T-0004", 1, 100.0, "unknown", "returned_overseas"),
}


class TestBuildings:
    @pytest.mark.parametrize("fields", ["pinyin", "chinese"])
    def test_buildings_on_imported_parcels_are_created(
        self, fields, first_import, corpus_dir, project, surveyor
    ):
        batch = run_import(
            corpus.buildings_zip(corpus_dir, fields=fields),
            project=project,
            actor=surveyor,
            commit=True,
            layer="buildings",
        )

        assert batch.state == ImportBatch.State.COMMITTED
        assert (batch.created, batch.updated, batch.unchanged) == (4, 0, 0)
        assert {
            b.code: (
                b.parcel.code,
                b.floors,
                pytest.approx(b.floor_area_m2),
                b.legality,
                b.owner_group,
            )
            for b in Building.objects.all()
        } == BUILDINGS
        assert set(Building.objects.values_list("status", flat=True)) == {"unsigned"}

    def test_reimporting_buildings_changes_nothing(
        self, first_import, corpus_dir, project, surveyor
    ):
        def import_buildings():
            return run_import(
                corpus.buildings_zip(corpus_dir),
                project=project,
                actor=surveyor,
                commit=True,
                layer="buildings",
            )

        import_buildings()
        before = registry_state()

        again = import_buildings()

        assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
        assert registry_state() == before

    def test_a_building_resurvey_updates_it_and_keeps_its_status(
        self, first_import, corpus_dir, project, surveyor
    ):
        run_import(
            corpus.buildings_zip(corpus_dir / "first"),
            project=project,
            actor=surveyor,
            commit=True,
            layer="buildings",
        )
        Building.objects.filter(code="GM-T-0002-J01").update(status="signed")
        buildings = [dict(building) for building in corpus.BUILDINGS]
        buildings[1].update(floors=6, floor_area=1350.0)

        batch = run_import(
            corpus.buildings_zip(corpus_dir / "again", buildings=buildings),
            project=project,
            actor=surveyor,
            commit=True,
            layer="buildings",
        )

        assert (batch.created, batch.updated, batch.unchanged) == (0, 1, 3)
        resurveyed = Building.objects.get(code="GM-T-0002-J01")
        assert (resurveyed.floors, resurveyed.floor_area_m2, resurveyed.status) == (
            6,
            1350.0,
            "signed",
        )

    def test_buildings_on_unknown_parcels_are_row_errors(
        self, first_import, corpus_dir, project, surveyor
    ):
        buildings = [dict(building) for building in corpus.BUILDINGS]
        buildings[1]["parcel_code"] = "GM-X-9999"
        before = registry_state()

        batch = run_import(
            corpus.buildings_zip(corpus_dir, buildings=buildings),
            project=project,
            actor=surveyor,
            commit=True,
            layer="buildings",
        )

        assert batch.state == ImportBatch.State.REFUSED
        assert batch.report["counts"] == {
            "features": 4,
            "valid": 3,
            "rejected": 1,
            "errors": 1,
            "warnings": 0,
        }
        assert reported(batch) == [
            (
                2,
                "GM-T-0002-J01",
                "DKBM",
                "error",
                "Parcel GM-X-9999 is not registered in project GM-SC.",
            )
        ]
        assert registry_state() == before

    def test_buildings_before_their_parcels_are_refused(
        self, corpus_dir, project, surveyor
    ):
        batch = run_import(
            corpus.buildings_zip(corpus_dir),
            project=project,
            actor=surveyor,
            commit=True,
            layer="buildings",
        )

        assert batch.state == ImportBatch.State.REFUSED
        assert reported(batch) == [
            (
                row,
                building["code"],
                "DKBM",
                "error",
                f"Parcel {building['parcel_code']} is not registered in project GM-SC.",
            )
            for row, building in enumerate(corpus.BUILDINGS, start=1)
        ]
        assert Building.objects.count() == 0
