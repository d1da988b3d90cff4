"""The writing services: who may change what, and the history each change leaves."""

import datetime
import itertools
import threading

import pytest
import time_machine
from django.contrib.gis.geos import Polygon
from django.db import IntegrityError, connection
from django.utils import translation
from pyproj import Transformer

from registry import services
from registry.choices import BuildingStatus, LandClass, Street
from registry.errors import BulkTransitionRefused, PermissionRefused, TransitionRefused
from registry.models import (
    Building,
    BuildingStatusChange,
    Parcel,
    ParcelStatusChange,
)
from registry.workflow import Move, Status
from tests.factories import BuildingFactory, ParcelFactory, parcel_square
from tests.registry.helpers import (
    ADVANCES,
    HAN,
    REOPENS,
    assert_bilingual,
    parcel_state,
    zh_catalogue_compiled,
)

pytestmark = pytest.mark.django_db

NOON = datetime.datetime(2025, 3, 14, 12, 0, tzinfo=datetime.UTC)
BANKED_ON = datetime.date(2025, 6, 30)
CASE_OFFICER_REACH = {"surveyed", "declared", "verified", "signed", "cleared"}


def actor_for(pair, case_officer, registry_admin):
    """Return who would make the move: case officers up to cleared, else the admin."""
    return case_officer if set(pair) <= CASE_OFFICER_REACH else registry_admin


def move_kwargs(current: str, target: str) -> dict:
    kwargs = {}
    if (current, target) in REOPENS:
        kwargs["reason"] = "Owner contested the survey"
    if target == "banked":
        kwargs.update(banked_on=BANKED_ON, bank_ref="LB-2025-0042")
    return kwargs


def refused(parcel, error_class, **kwargs):
    """Run a transition that must be refused; assert nothing changed, return error."""
    before = parcel_state(parcel)
    with pytest.raises(error_class) as caught:
        services.parcel_transition(parcel=parcel, **kwargs)
    assert parcel_state(parcel) == before
    return caught.value


# -- parcel_transition: every allowed move ---------------------------------------


@pytest.mark.parametrize("pair", ADVANCES + REOPENS, ids="→".join)
def test_it_makes_every_allowed_move_and_records_it(
    pair, project, case_officer, registry_admin
):
    current, target = pair
    actor = actor_for(pair, case_officer, registry_admin)
    parcel = ParcelFactory(project=project, status=current)
    kwargs = move_kwargs(current, target)

    with time_machine.travel(NOON, tick=False):
        change = services.parcel_transition(
            parcel=parcel, to_status=target, actor=actor, **kwargs
        )

    stored = Parcel.objects.get(pk=parcel.pk)
    assert stored.status == target
    assert parcel.status == target, "the caller's instance shows the new status"
    [row] = ParcelStatusChange.objects.filter(parcel=parcel)
    assert row == change
    assert row.from_status == current
    assert row.to_status == target
    assert row.actor == actor
    assert row.at == NOON
    assert row.move == (Move.REOPEN if pair in REOPENS else Move.ADVANCE)
    assert row.reason == kwargs.get("reason", "")
    if target == "banked":
        assert (stored.banked_on, stored.bank_ref) == (BANKED_ON, "LB-2025-0042")
    else:
        assert (stored.banked_on, stored.bank_ref) == (None, "")


def test_a_case_officer_carries_a_parcel_from_survey_to_cleared(
    project, surveyor, case_officer
):
    parcel = services.parcel_create(
        code="GM-SC-001",
        land_class=LandClass.STATE_FARM,
        geom=parcel_square(project, 0, 30),
        actor=surveyor,
        project=project,
    )
    for target in ["declared", "verified", "signed", "cleared"]:
        services.parcel_transition(parcel=parcel, to_status=target, actor=case_officer)

    history = list(
        ParcelStatusChange.objects.filter(parcel=parcel).values_list(
            "move", "from_status", "to_status"
        )
    )
    assert history == [
        ("create", "", "surveyed"),
        ("advance", "surveyed", "declared"),
        ("advance", "declared", "verified"),
        ("advance", "verified", "signed"),
        ("advance", "signed", "cleared"),
    ]
    assert Parcel.objects.get(pk=parcel.pk).status == "cleared"


def test_banking_records_the_date_and_reference(project, registry_admin):
    parcel = ParcelFactory(project=project, status=Status.CLEARED)

    services.parcel_transition(
        parcel=parcel,
        to_status=Status.BANKED,
        actor=registry_admin,
        banked_on=BANKED_ON,
        bank_ref="  LB-2025-0042  ",
        evidence_ref="入库通知书 2025-17",
    )

    stored = Parcel.objects.get(pk=parcel.pk)
    assert stored.status == Status.BANKED
    assert stored.banked_on == BANKED_ON
    assert stored.bank_ref == "LB-2025-0042"
    assert parcel.bank_ref == "LB-2025-0042"
    assert stored.history.get().evidence_ref == "入库通知书 2025-17"


def test_reopening_a_banked_parcel_takes_it_out_of_the_bank(project, registry_admin):
    parcel = ParcelFactory(project=project, status=Status.CLEARED)
    services.parcel_transition(
        parcel=parcel,
        to_status=Status.BANKED,
        actor=registry_admin,
        banked_on=BANKED_ON,
        bank_ref="LB-2025-0042",
    )

    services.parcel_transition(
        parcel=parcel,
        to_status=Status.SIGNED,
        actor=registry_admin,
        reason="Court annulled the agreement",
    )

    stored = Parcel.objects.get(pk=parcel.pk)
    assert stored.status == Status.SIGNED
    assert (stored.banked_on, stored.bank_ref) == (None, "")
    reopen = stored.history.order_by("at", "pk").last()
    assert reopen.move == Move.REOPEN
    assert (reopen.from_status, reopen.to_status) == ("banked", "signed")
    assert reopen.reason == "Court annulled the agreement"


def test_the_land_bank_reference_survives_a_reopen_in_the_history(
    project, registry_admin
):
    parcel = ParcelFactory(project=project, status=Status.CLEARED)
    services.parcel_transition(
        parcel=parcel,
        to_status=Status.BANKED,
        actor=registry_admin,
        banked_on=BANKED_ON,
        bank_ref="LB-2025-0042",
    )
    services.parcel_transition(
        parcel=parcel, to_status=Status.CLEARED, actor=registry_admin, reason="Error"
    )

    recorded = [
        str(value)
        for row in ParcelStatusChange.objects.filter(parcel=parcel).values()
        for value in row.values()
    ]
    assert any("LB-2025-0042" in value for value in recorded)


def test_a_parcel_is_cleared_once_every_building_is_vacated_or_demolished(
    project, case_officer
):
    parcel = ParcelFactory(project=project, status=Status.SIGNED)
    BuildingFactory(parcel=parcel, status=BuildingStatus.VACATED)
    BuildingFactory(parcel=parcel, status=BuildingStatus.DEMOLISHED)

    services.parcel_transition(
        parcel=parcel, to_status=Status.CLEARED, actor=case_officer
    )

    assert Parcel.objects.get(pk=parcel.pk).status == Status.CLEARED


def test_the_reason_and_evidence_are_stored_trimmed(project, case_officer):
    parcel = ParcelFactory(project=project, status=Status.VERIFIED)

    change = services.parcel_transition(
        parcel=parcel,
        to_status=Status.DECLARED,
        actor=case_officer,
        reason="  Second heir came forward \n",
        evidence_ref=" 申报材料补充 ",
    )

    change.refresh_from_db()
    assert change.reason == "Second heir came forward"
    assert change.evidence_ref == "申报材料补充"


# -- parcel_transition: refusals ------------------------------------------------


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("surveyed", "verified"),
        ("surveyed", "cleared"),
        ("declared", "signed"),
        ("verified", "cleared"),
        ("signed", "banked"),
    ],
)
def test_it_refuses_to_skip_a_stage(
    current, target, project, case_officer, registry_admin
):
    parcel = ParcelFactory(project=project, status=current)
    for actor in (case_officer, registry_admin):
        error = refused(
            parcel,
            TransitionRefused,
            to_status=target,
            actor=actor,
            banked_on=BANKED_ON,
            bank_ref="LB-1",
        )
        assert_bilingual(error, parcel.code, "one stage at a time")


@pytest.mark.parametrize("stage", ["surveyed", "declared", "cleared", "banked"])
def test_it_refuses_to_move_a_parcel_to_the_stage_it_is_in(
    stage, project, registry_admin
):
    parcel = ParcelFactory(project=project, status=stage)

    error = refused(
        parcel,
        TransitionRefused,
        to_status=stage,
        actor=registry_admin,
        reason="again",
    )

    assert_bilingual(error, parcel.code, "already")


def test_it_refuses_an_unknown_status(project, registry_admin):
    parcel = ParcelFactory(project=project)

    error = refused(
        parcel, TransitionRefused, to_status="demolished", actor=registry_admin
    )

    assert_bilingual(error, "Unknown status", "demolished")


@pytest.mark.parametrize("reason", ["", "   \n\t"])
@pytest.mark.parametrize(
    ("current", "target"), [("declared", "surveyed"), ("cleared", "verified")]
)
def test_it_refuses_to_reopen_without_a_reason(
    current, target, reason, project, case_officer
):
    parcel = ParcelFactory(project=project, status=current)

    error = refused(
        parcel,
        TransitionRefused,
        to_status=target,
        actor=case_officer,
        reason=reason,
    )

    assert_bilingual(error, parcel.code, "needs a reason")


def test_the_admin_needs_a_reason_to_reopen_a_banked_parcel_too(
    project, registry_admin
):
    parcel = ParcelFactory(project=project, status=Status.BANKED)

    error = refused(
        parcel, TransitionRefused, to_status=Status.CLEARED, actor=registry_admin
    )

    assert_bilingual(error, "needs a reason")


@pytest.mark.parametrize(
    "open_status", [BuildingStatus.UNSIGNED, BuildingStatus.SIGNED]
)
def test_it_refuses_to_clear_a_parcel_with_a_building_not_vacated(
    open_status, project, case_officer
):
    parcel = ParcelFactory(project=project, status=Status.SIGNED)
    BuildingFactory(parcel=parcel, code="GM-SC-B-0007", status=open_status)
    BuildingFactory(parcel=parcel, code="GM-SC-B-0008", status="vacated")
    BuildingFactory(parcel=parcel, code="GM-SC-B-0009", status="demolished")

    error = refused(
        parcel, TransitionRefused, to_status=Status.CLEARED, actor=case_officer
    )

    assert_bilingual(error, parcel.code, "cannot be cleared", "GM-SC-B-0007")
    assert "GM-SC-B-0008" not in error.en
    assert "GM-SC-B-0009" not in error.en
    assert "1 building(s)" in error.en


def test_the_refusal_to_clear_names_at_most_ten_buildings(project, registry_admin):
    parcel = ParcelFactory(project=project, status=Status.SIGNED)
    for n in range(12):
        BuildingFactory(parcel=parcel, code=f"GM-SC-B-{n:04d}")

    error = refused(
        parcel, TransitionRefused, to_status=Status.CLEARED, actor=registry_admin
    )

    assert "12 building(s)" in error.en
    assert "GM-SC-B-0009" in error.en
    assert "GM-SC-B-0010" not in error.en
    assert "…" in error.en


@pytest.mark.parametrize(
    ("banked_on", "bank_ref"),
    [(None, "LB-2025-0042"), (BANKED_ON, ""), (BANKED_ON, "   "), (None, "")],
)
def test_it_refuses_to_bank_without_a_date_and_reference(
    banked_on, bank_ref, project, registry_admin
):
    parcel = ParcelFactory(project=project, status=Status.CLEARED)

    error = refused(
        parcel,
        TransitionRefused,
        to_status=Status.BANKED,
        actor=registry_admin,
        banked_on=banked_on,
        bank_ref=bank_ref,
    )

    assert_bilingual(error, parcel.code, "land bank reference")


def test_a_case_officer_may_not_bank_a_parcel(project, case_officer):
    parcel = ParcelFactory(project=project, status=Status.CLEARED)

    error = refused(
        parcel,
        PermissionRefused,
        to_status=Status.BANKED,
        actor=case_officer,
        banked_on=BANKED_ON,
        bank_ref="LB-2025-0042",
    )

    assert_bilingual(error, "You may not move parcel", parcel.code)


@pytest.mark.parametrize("target", ["surveyed", "signed", "cleared"])
def test_a_case_officer_may_not_reopen_a_banked_parcel(target, project, case_officer):
    parcel = ParcelFactory(project=project, status=Status.BANKED)

    error = refused(
        parcel,
        PermissionRefused,
        to_status=target,
        actor=case_officer,
        reason="Owner appealed",
    )

    assert_bilingual(error, "You may not move parcel")


def test_a_case_officer_may_not_move_parcels_of_another_project(
    project, case_officer_elsewhere
):
    parcel = ParcelFactory(project=project, status=Status.SURVEYED)

    error = refused(
        parcel,
        PermissionRefused,
        to_status=Status.DECLARED,
        actor=case_officer_elsewhere,
    )

    assert_bilingual(error, "You may not move parcel", parcel.code)


def test_a_case_officer_may_not_move_a_parcel_outside_any_project(case_officer):
    parcel = ParcelFactory(project=None)

    refused(parcel, PermissionRefused, to_status=Status.DECLARED, actor=case_officer)


def test_a_deactivated_case_officer_may_not_move_parcels(project, case_officer):
    parcel = ParcelFactory(project=project)
    case_officer.is_active = False
    case_officer.save()

    refused(parcel, PermissionRefused, to_status=Status.DECLARED, actor=case_officer)


@pytest.mark.parametrize(
    "persona",
    ["planner", "analyst", "surveyor", "outsider", "case_officer_elsewhere"],
)
@pytest.mark.parametrize("pair", ADVANCES + REOPENS, ids="→".join)
def test_roles_without_workflow_rights_may_make_no_move(
    persona, pair, project, request
):
    actor = request.getfixturevalue(persona)
    current, target = pair
    parcel = ParcelFactory(project=project, status=current)

    error = refused(
        parcel,
        PermissionRefused,
        to_status=target,
        actor=actor,
        **move_kwargs(current, target),
    )

    assert_bilingual(error, "You may not move parcel", parcel.code)


def test_the_refusal_is_checked_again_under_the_lock(project, case_officer):
    """A stale instance cannot be used to record a move from a stage it left."""
    parcel = ParcelFactory(project=project, status=Status.SURVEYED)
    stale = Parcel.objects.get(pk=parcel.pk)
    services.parcel_transition(
        parcel=parcel, to_status=Status.DECLARED, actor=case_officer
    )

    error = refused(
        stale, TransitionRefused, to_status=Status.DECLARED, actor=case_officer
    )

    assert "already" in error.en
    assert ParcelStatusChange.objects.filter(parcel=parcel).count() == 1


def test_transition_refusal_explains_without_writing(project, case_officer):
    parcel = ParcelFactory(project=project, status=Status.SURVEYED)
    before = parcel_state(parcel)

    assert (
        services.transition_refusal(
            parcel=parcel, to_status=Status.DECLARED, actor=case_officer
        )
        is None
    )
    refusal = services.transition_refusal(
        parcel=parcel, to_status=Status.SIGNED, actor=case_officer
    )

    assert isinstance(refusal, TransitionRefused)
    assert parcel_state(parcel) == before


@pytest.mark.skipif(
    not zh_catalogue_compiled(), reason="zh_Hans catalogue not compiled (make messages)"
)
def test_refusals_read_in_chinese_with_the_status_names_in_chinese(
    project, case_officer
):
    parcel = ParcelFactory(project=project, status=Status.SURVEYED)

    error = refused(
        parcel, TransitionRefused, to_status=Status.SIGNED, actor=case_officer
    )

    with translation.override("zh-hans"):
        surveyed, signed = str(Status.SURVEYED.label), str(Status.SIGNED.label)
    assert HAN.search(surveyed)
    assert surveyed in error.zh
    assert signed in error.zh
    assert parcel.code in error.zh
    assert error.as_dict() == {"zh": error.zh, "en": error.en}


# -- parcel_transition_bulk -----------------------------------------------------


def test_bulk_moves_every_parcel_and_writes_one_row_each(project, case_officer):
    parcels = ParcelFactory.create_batch(3, project=project)

    with time_machine.travel(NOON, tick=False):
        changes = services.parcel_transition_bulk(
            parcels=parcels, to_status=Status.DECLARED, actor=case_officer
        )

    assert len(changes) == 3
    for parcel in parcels:
        assert Parcel.objects.get(pk=parcel.pk).status == Status.DECLARED
        row = ParcelStatusChange.objects.get(parcel=parcel)
        assert (row.move, row.from_status, row.to_status) == (
            "advance",
            "surveyed",
            "declared",
        )
        assert row.actor == case_officer
        assert row.at == NOON
    assert Parcel.objects.get(pk=parcels[0].pk).updated_at == NOON


@pytest.mark.parametrize("size", [5, 200])
def test_bulk_clearing_costs_the_same_few_queries_for_5_or_200_parcels(
    size, project, case_officer, django_assert_max_num_queries
):
    parcels = ParcelFactory.create_batch(size, project=project, status=Status.SIGNED)
    for parcel in parcels:
        BuildingFactory(parcel=parcel, status=BuildingStatus.VACATED)

    # Lock, grants, open buildings, update, insert history, savepoints: not one
    # round of permission or building queries per parcel.
    with django_assert_max_num_queries(12):
        services.parcel_transition_bulk(
            parcels=parcels, to_status=Status.CLEARED, actor=case_officer
        )

    assert Parcel.objects.filter(status=Status.CLEARED).count() == size


def test_bulk_accepts_parcel_ids_and_banks_them(project, registry_admin):
    parcels = ParcelFactory.create_batch(2, project=project, status=Status.CLEARED)

    services.parcel_transition_bulk(
        parcels=[p.pk for p in parcels],
        to_status=Status.BANKED,
        actor=registry_admin,
        banked_on=BANKED_ON,
        bank_ref="LB-2025-0100",
    )

    stored = Parcel.objects.filter(pk__in=[p.pk for p in parcels])
    assert {(p.status, p.banked_on, p.bank_ref) for p in stored} == {
        ("banked", BANKED_ON, "LB-2025-0100")
    }
    assert ParcelStatusChange.objects.filter(parcel__in=parcels).count() == 2


def test_bulk_changes_nothing_when_one_parcel_is_refused(project, case_officer):
    ready = ParcelFactory.create_batch(3, project=project)
    ahead = ParcelFactory(project=project, status=Status.VERIFIED, code="GM-SC-0666")
    everything = [*ready, ahead]
    before = [parcel_state(p) for p in everything]

    with pytest.raises(BulkTransitionRefused) as caught:
        services.parcel_transition_bulk(
            parcels=everything, to_status=Status.DECLARED, actor=case_officer
        )

    assert [parcel_state(p) for p in everything] == before
    error = caught.value
    assert [code for code, _refusal in error.refusals] == ["GM-SC-0666"]
    [(_code, refusal)] = error.refusals
    assert isinstance(refusal, TransitionRefused)
    assert "GM-SC-0666" in refusal.en
    assert_bilingual(error, "1 of 4 parcels", "nothing was changed")


def test_bulk_lists_every_refused_parcel_with_its_reason(
    project, other_project, case_officer
):
    mine = ParcelFactory(project=project, code="GM-SC-0001")
    theirs = ParcelFactory(project=other_project, code="GM-L6-0001")
    reopen = ParcelFactory(project=project, code="GM-SC-0002", status="signed")

    with pytest.raises(BulkTransitionRefused) as caught:
        services.parcel_transition_bulk(
            parcels=[reopen, theirs, mine],
            to_status=Status.DECLARED,
            actor=case_officer,
        )

    refusals = dict(caught.value.refusals)
    assert set(refusals) == {"GM-L6-0001", "GM-SC-0002"}
    assert isinstance(refusals["GM-L6-0001"], PermissionRefused)
    assert "needs a reason" in refusals["GM-SC-0002"].en
    assert Parcel.objects.get(pk=mine.pk).status == Status.SURVEYED
    assert not ParcelStatusChange.objects.exists()


def test_bulk_refuses_unknown_parcel_ids(project, case_officer):
    parcel = ParcelFactory(project=project)
    before = parcel_state(parcel)

    with pytest.raises(TransitionRefused) as caught:
        services.parcel_transition_bulk(
            parcels=[parcel.pk, 987_654_321],
            to_status=Status.DECLARED,
            actor=case_officer,
        )

    assert "987654321" in caught.value.en
    assert parcel_state(parcel) == before


# -- parcel_create ---------------------------------------------------------------


def test_a_surveyor_registers_a_parcel_in_their_project(project, surveyor):
    with time_machine.travel(NOON, tick=False):
        parcel = services.parcel_create(
            code="GM-SC-0100",
            land_class=LandClass.UNFINISHED_EXPROPRIATION,
            geom=parcel_square(project, 1, 50),
            actor=surveyor,
            project=project,
            declared_area_m2=2_480.0,
            reason="Survey batch 3",
        )

    stored = Parcel.objects.get(code="GM-SC-0100")
    assert stored == parcel
    assert stored.status == Status.SURVEYED
    assert stored.project == project
    assert stored.street == project.street
    assert stored.area_m2 == pytest.approx(2_500.0)
    assert parcel.area_m2 == pytest.approx(2_500.0)
    [row] = stored.history.all()
    assert (row.move, row.from_status, row.to_status) == ("create", "", "surveyed")
    assert row.actor == surveyor
    assert row.at == NOON
    assert row.reason == "Survey batch 3"


def test_the_registry_admin_registers_parcels_anywhere(registry_admin):
    parcel = services.parcel_create(
        code="GM-X-0001",
        land_class=LandClass.COLLECTIVE,
        geom=parcel_square(None, 1, 20),
        actor=registry_admin,
        street=Street.MATIAN,
    )

    assert parcel.project is None
    assert Parcel.objects.get(pk=parcel.pk).street == Street.MATIAN
    assert parcel.history.get().actor == registry_admin


def test_a_parcel_drawn_in_lon_lat_is_stored_as_a_multipolygon_in_4547(
    project, surveyor
):
    polygon = Polygon.from_bbox((113.930, 22.760, 113.931, 22.761))
    polygon.srid = 4326

    parcel = services.parcel_create(
        code="GM-SC-LL",
        land_class=LandClass.COLLECTIVE,
        geom=polygon,
        actor=surveyor,
        project=project,
    )

    stored = Parcel.objects.get(pk=parcel.pk)
    assert stored.geom.srid == 4547
    assert stored.geom.geom_type == "MultiPolygon"
    expected = Transformer.from_crs(4326, 4547, always_xy=True).transform(
        113.9305, 22.7605
    )
    assert stored.geom.centroid.coords == pytest.approx(expected, abs=0.5)
    # 0.001° × 0.001° at 22.76°N is about 102.7 m × 110.8 m.
    assert stored.area_m2 == pytest.approx(102.7 * 110.8, rel=0.005)


@pytest.mark.parametrize("persona", ["case_officer", "planner", "analyst", "outsider"])
def test_other_roles_may_not_register_parcels(persona, project, request):
    actor = request.getfixturevalue(persona)

    with pytest.raises(PermissionRefused) as caught:
        services.parcel_create(
            code="GM-SC-0200",
            land_class=LandClass.COLLECTIVE,
            geom=parcel_square(project, 1, 20),
            actor=actor,
            project=project,
        )

    assert_bilingual(caught.value, "You may not register parcels", project.code)
    assert not Parcel.objects.exists()
    assert not ParcelStatusChange.objects.exists()


def test_a_surveyor_may_not_register_parcels_in_another_project(
    other_project, surveyor
):
    with pytest.raises(PermissionRefused):
        services.parcel_create(
            code="GM-L6-0200",
            land_class=LandClass.COLLECTIVE,
            geom=parcel_square(other_project, 1, 20),
            actor=surveyor,
            project=other_project,
        )

    assert not Parcel.objects.exists()


def test_a_surveyor_may_not_register_parcels_outside_any_project(surveyor):
    with pytest.raises(PermissionRefused):
        services.parcel_create(
            code="GM-0200",
            land_class=LandClass.COLLECTIVE,
            geom=parcel_square(None, 1, 20),
            actor=surveyor,
        )

    assert not Parcel.objects.exists()


def test_it_refuses_an_unknown_land_class(project, surveyor):
    with pytest.raises(TransitionRefused) as caught:
        services.parcel_create(
            code="GM-SC-0300",
            land_class="industrial",
            geom=parcel_square(project, 1, 20),
            actor=surveyor,
            project=project,
        )

    assert_bilingual(caught.value, "Unknown land class", "industrial")
    assert not Parcel.objects.exists()


def test_a_duplicate_code_leaves_no_half_written_parcel(project, surveyor):
    ParcelFactory(project=project, code="GM-SC-0400")

    with pytest.raises(IntegrityError):
        services.parcel_create(
            code="GM-SC-0400",
            land_class=LandClass.COLLECTIVE,
            geom=parcel_square(project, 1, 20),
            actor=surveyor,
            project=project,
        )

    assert Parcel.objects.filter(code="GM-SC-0400").count() == 1
    assert not ParcelStatusChange.objects.exists()


# -- building_set_status -----------------------------------------------------------


def building_state(building):
    fresh = Building.objects.get(pk=building.pk)
    return fresh.status, BuildingStatusChange.objects.filter(building=building).count()


def test_a_case_officer_records_each_building_step_in_turn(project, case_officer):
    building = BuildingFactory(parcel=ParcelFactory(project=project))

    for target in ["signed", "vacated", "demolished"]:
        services.building_set_status(
            building=building, to_status=target, actor=case_officer
        )
        assert building.status == target

    assert Building.objects.get(pk=building.pk).status == "demolished"
    history = list(
        BuildingStatusChange.objects.filter(building=building).values_list(
            "from_status", "to_status", "actor"
        )
    )
    assert history == [
        ("unsigned", "signed", case_officer.pk),
        ("signed", "vacated", case_officer.pk),
        ("vacated", "demolished", case_officer.pk),
    ]


def test_the_registry_admin_may_record_building_steps(project, registry_admin):
    building = BuildingFactory(parcel=ParcelFactory(project=project))

    change = services.building_set_status(
        building=building, to_status="signed", actor=registry_admin, reason="Signed"
    )

    assert change.actor == registry_admin
    assert change.reason == "Signed"
    assert Building.objects.get(pk=building.pk).status == "signed"


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("unsigned", "vacated"),
        ("unsigned", "demolished"),
        ("signed", "unsigned"),
        ("vacated", "signed"),
        ("signed", "signed"),
        ("demolished", "demolished"),
        ("demolished", "unsigned"),
        ("unsigned", "burnt"),
    ],
)
def test_a_building_moves_forward_one_step_only(current, target, project, case_officer):
    building = BuildingFactory(
        parcel=ParcelFactory(project=project), status=current, code="GM-SC-B-0042"
    )
    before = building_state(building)

    with pytest.raises(TransitionRefused) as caught:
        services.building_set_status(
            building=building, to_status=target, actor=case_officer
        )

    assert building_state(building) == before
    assert_bilingual(caught.value, "GM-SC-B-0042", "cannot go from")


@pytest.mark.parametrize(
    "persona",
    ["case_officer_elsewhere", "surveyor", "planner", "analyst", "outsider"],
)
def test_other_roles_may_not_change_buildings(persona, project, request):
    actor = request.getfixturevalue(persona)
    building = BuildingFactory(parcel=ParcelFactory(project=project))
    before = building_state(building)

    with pytest.raises(PermissionRefused) as caught:
        services.building_set_status(building=building, to_status="signed", actor=actor)

    assert building_state(building) == before
    assert_bilingual(caught.value, "You may not change building", building.code)


# -- concurrency -------------------------------------------------------------------


def run_at_once(*calls):
    """Run each call in its own thread and database connection, all released at once.

    Return each call's result, or the exception it raised.
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def work(index, call):
        try:
            barrier.wait(timeout=10)
            outcomes[index] = call()
        except Exception as error:
            outcomes[index] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(index, call))
        for index, call in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return outcomes


def transition_in_thread(parcel_pk, to_status, actor):
    def call():
        parcel = Parcel.objects.get(pk=parcel_pk)
        return services.parcel_transition(
            parcel=parcel, to_status=to_status, actor=actor
        )

    return call


def assert_history_is_one_chain(parcel):
    """Assert the history runs from creation to the parcel's status without gaps."""
    rows = list(
        ParcelStatusChange.objects.filter(parcel=parcel)
        .order_by("at", "pk")
        .values_list("from_status", "to_status")
    )
    assert rows[0] == ("", "surveyed")
    for (_before, reached), (left, _after) in itertools.pairwise(rows):
        assert left == reached, rows
    assert rows[-1][1] == Parcel.objects.get(pk=parcel.pk).status


@pytest.mark.django_db(transaction=True)
def test_two_officers_advancing_one_parcel_at_once_record_one_advance(
    project, surveyor, case_officer, registry_admin
):
    for round_ in range(5):
        parcel = services.parcel_create(
            code=f"GM-SC-RACE-{round_}",
            land_class=LandClass.COLLECTIVE,
            geom=parcel_square(project, round_, 30),
            actor=surveyor,
            project=project,
        )

        outcomes = run_at_once(
            transition_in_thread(parcel.pk, Status.DECLARED, case_officer),
            transition_in_thread(parcel.pk, Status.DECLARED, registry_admin),
        )

        changes = [o for o in outcomes if isinstance(o, ParcelStatusChange)]
        refusals = [o for o in outcomes if isinstance(o, TransitionRefused)]
        assert (len(changes), len(refusals)) == (1, 1), outcomes
        assert "already" in refusals[0].en
        assert Parcel.objects.get(pk=parcel.pk).status == Status.DECLARED
        advances = ParcelStatusChange.objects.filter(parcel=parcel, move="advance")
        assert list(advances.values_list("from_status", "to_status")) == [
            ("surveyed", "declared")
        ]
        assert_history_is_one_chain(parcel)


@pytest.mark.django_db(transaction=True)
def test_two_successive_moves_at_once_leave_a_history_that_matches_the_parcel(
    project, surveyor, case_officer, registry_admin
):
    for round_ in range(5):
        parcel = services.parcel_create(
            code=f"GM-SC-CHAIN-{round_}",
            land_class=LandClass.COLLECTIVE,
            geom=parcel_square(project, round_, 30),
            actor=surveyor,
            project=project,
        )

        declare, verify = run_at_once(
            transition_in_thread(parcel.pk, Status.DECLARED, case_officer),
            transition_in_thread(parcel.pk, Status.VERIFIED, registry_admin),
        )

        # Declaring always works; verifying works only if it waited for it.
        assert isinstance(declare, ParcelStatusChange), declare
        assert isinstance(verify, ParcelStatusChange | TransitionRefused), verify
        expected = "verified" if isinstance(verify, ParcelStatusChange) else "declared"
        assert Parcel.objects.get(pk=parcel.pk).status == expected
        moves = ParcelStatusChange.objects.filter(parcel=parcel).exclude(move="create")
        assert moves.count() == 1 + isinstance(verify, ParcelStatusChange)
        assert_history_is_one_chain(parcel)
