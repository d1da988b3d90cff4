"""The audit trail: every change leaves exactly one record, and nobody rewrites it.

Changes are made the way users make them (the API with a token, the admin with a
logged-in browser, a command), each from a known address and user agent; the
record must name who, what and from where. Changes that roll back leave none.
"""

import socket
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from rest_framework.authtoken.models import Token

from registry import audit, services
from registry.admin import AuditRecordAdmin, admin_site
from registry.audit_origin import Origin, client_address, using
from registry.models import (
    AuditRecord,
    ExportLog,
    Membership,
    Parcel,
    ParcelRevision,
)
from tests.factories import (
    BuildingFactory,
    ParcelFactory,
    UserFactory,
    parcel_square,
    square,
)
from tests.registry.helpers import change_form_data

pytestmark = pytest.mark.django_db

OFFICE = "10.20.30.40"
BROWSER = "Mozilla/5.0 (Windows NT 10.0) Chrome/120 测试"
QGIS = "QGIS/33400"
HOST = socket.gethostname()


def api_as(user, **headers) -> Client:
    """Return a client sending ``user``'s API token from the office address."""
    token, _ = Token.objects.get_or_create(user=user)
    return Client(
        HTTP_AUTHORIZATION=f"Token {token.key}",
        REMOTE_ADDR=OFFICE,
        HTTP_USER_AGENT=QGIS,
        **headers,
    )


# API clients are fixtures: creating their tokens is recorded too, before the
# test's own trail starts.
@pytest.fixture
def officer_api(case_officer):
    return api_as(case_officer)


@pytest.fixture
def analyst_api(analyst):
    return api_as(analyst)


@pytest.fixture
def planner_api(planner):
    return api_as(planner)


@pytest.fixture
def trail():
    """Return a function listing the records written since the test was set up.

    Setting up personas grants roles, and those are recorded too; ask for this
    fixture last.
    """
    start = AuditRecord.objects.order_by("-pk").values_list("pk", flat=True).first()

    def written(**filters) -> list[AuditRecord]:
        return list(
            AuditRecord.objects.filter(pk__gt=start or 0, **filters).order_by("pk")
        )

    return written


def origin_of(record: AuditRecord) -> tuple:
    return (record.channel, record.remote_addr, record.user_agent, record.host)


@pytest.fixture
def admin_web(login, registry_admin):
    """The registry admin's browser, in English, at the office address."""
    return login(
        registry_admin, language="en", REMOTE_ADDR=OFFICE, HTTP_USER_AGENT=BROWSER
    )


# -- status -------------------------------------------------------------------


def test_a_status_move_through_the_api_leaves_one_record(
    project, case_officer, officer_api, trail
):
    parcel = ParcelFactory(code="GM-SC-0001", project=project)

    response = officer_api.post(
        f"/api/parcels/{parcel.pk}/transition/",
        {"to_status": "declared", "evidence_ref": "申报表 2025-001"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    [record] = trail()
    assert (record.actor, record.actor_username) == (case_officer, "case_officer")
    assert (record.action, record.object_kind, record.object_id) == (
        "status_move",
        "parcel",
        parcel.pk,
    )
    assert (record.object_code, record.project, record.project_code) == (
        "GM-SC-0001",
        project,
        "GM-SC",
    )
    assert record.changes == {
        "move": "advance",
        "from_status": "surveyed",
        "to_status": "declared",
        "reason": "",
        "evidence_ref": "申报表 2025-001",
    }
    assert origin_of(record) == ("api", OFFICE, QGIS, HOST)


def test_banking_records_the_date_and_reference(project, registry_admin, trail):
    parcel = ParcelFactory(project=project, status="cleared")

    services.parcel_transition(
        parcel=parcel,
        to_status="banked",
        actor=registry_admin,
        banked_on="2025-06-30",
        bank_ref="LB-2025-0042",
    )

    [record] = trail()
    assert record.changes["banked_on"] == "2025-06-30"
    assert record.changes["bank_ref"] == "LB-2025-0042"
    # Not in a request: the command (here, the test runner) on this host.
    assert (record.channel, record.remote_addr, record.host) == ("command", None, HOST)


def test_a_bulk_move_leaves_one_record_naming_every_parcel(
    project, case_officer, officer_api, trail
):
    parcels = [
        ParcelFactory(code=f"GM-SC-{n:04d}", project=project) for n in range(1, 4)
    ]

    response = officer_api.post(
        "/api/parcels/transition/",
        {"parcels": [p.pk for p in parcels], "to_status": "declared"},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    [record] = trail()
    assert (record.action, record.actor, record.project_code) == (
        "bulk_move",
        case_officer,
        "GM-SC",
    )
    assert record.changes["parcels"] == ["GM-SC-0001", "GM-SC-0002", "GM-SC-0003"]
    assert record.changes["count"] == 3
    assert record.changes["from_statuses"] == {"surveyed": 3}
    assert record.changes["to_status"] == "declared"
    assert origin_of(record) == ("api", OFFICE, QGIS, HOST)


def test_a_bulk_move_over_two_projects_leaves_one_record_per_project(
    project, other_project, registry_admin, trail
):
    ParcelFactory(code="A-1", project=project)
    ParcelFactory(code="B-1", project=other_project)
    ParcelFactory(code="B-2", project=other_project)

    services.parcel_transition_bulk(
        parcels=Parcel.objects.all(), to_status="declared", actor=registry_admin
    )

    assert sorted(
        (r.project_code, r.changes["count"]) for r in trail(action="bulk_move")
    ) == [("GM-L6", 2), ("GM-SC", 1)]


def test_a_refused_move_leaves_no_record(project, case_officer, officer_api, trail):
    parcel = ParcelFactory(project=project)

    response = officer_api.post(
        f"/api/parcels/{parcel.pk}/transition/",
        {"to_status": "signed"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert trail() == []


def test_a_refused_bulk_move_leaves_no_record(
    project, case_officer, officer_api, trail
):
    parcels = [ParcelFactory(project=project), ParcelFactory(project=project)]
    parcels[1].status = "signed"
    parcels[1].save()

    response = officer_api.post(
        "/api/parcels/transition/",
        {"parcels": [p.pk for p in parcels], "to_status": "declared"},
        content_type="application/json",
    )

    assert response.status_code == 400
    assert trail() == []


def test_a_move_whose_transaction_rolls_back_leaves_no_record(
    project, case_officer, trail
):
    parcel = ParcelFactory(project=project)

    with pytest.raises(RuntimeError), transaction.atomic():
        services.parcel_transition(
            parcel=parcel, to_status="declared", actor=case_officer
        )
        assert len(trail()) == 1
        raise RuntimeError("the caller's transaction fails afterwards")

    assert trail() == []
    assert Parcel.objects.get(pk=parcel.pk).status == "surveyed"


def test_a_building_step_leaves_one_record(project, case_officer, trail):
    building = BuildingFactory(code="B-01", parcel=ParcelFactory(project=project))

    services.building_set_status(
        building=building, to_status="signed", actor=case_officer
    )

    [record] = trail()
    assert (record.action, record.object_code, record.project_code) == (
        "building_status",
        "B-01",
        "GM-SC",
    )
    assert (record.changes["from_status"], record.changes["to_status"]) == (
        "unsigned",
        "signed",
    )


def test_a_parcel_added_in_the_admin_is_recorded(
    admin_web, registry_admin, project, trail
):
    response = admin_web.post(
        "/admin/registry/parcel/add/",
        {
            "code": "GM-SC-NEW",
            "project": project.pk,
            "land_class": "collective",
            "street": "guangming",
            "geom": parcel_square(project, 90, 40).ewkt,
            "declared_area_m2": "",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    [record] = trail(action="parcel_created")
    assert (record.actor, record.object_code, record.changes["to_status"]) == (
        registry_admin,
        "GM-SC-NEW",
        "surveyed",
    )
    assert origin_of(record) == ("web", OFFICE, BROWSER, HOST)


# -- geometry -----------------------------------------------------------------


def test_an_admin_geometry_edit_leaves_a_record_and_a_revision(
    admin_web, registry_admin, project, trail
):
    parcel = ParcelFactory(code="GM-SC-0007", project=project, side=40)
    old_geom = parcel.geom
    bigger = parcel_square(project, parcel.pk % 100, 50)

    response = admin_web.post(
        f"/admin/registry/parcel/{parcel.pk}/change/",
        change_form_data(parcel, geom=bigger.ewkt),
    )

    assert response.status_code == 302
    [record] = trail()
    assert (record.action, record.actor, record.object_code) == (
        "geometry_change",
        registry_admin,
        "GM-SC-0007",
    )
    assert record.changes["area_m2"] == {"from": 1600.0, "to": 2500.0}
    assert origin_of(record) == ("web", OFFICE, BROWSER, HOST)
    [revision] = ParcelRevision.objects.filter(parcel=parcel)
    assert (revision.kind, revision.import_batch_id, revision.actor) == (
        "edited",
        None,
        registry_admin,
    )
    assert revision.old_geom.equals_exact(old_geom, 1e-6)
    assert record.changes["revision"] == revision.pk
    assert Parcel.objects.get(pk=parcel.pk).area_m2 == pytest.approx(2500.0)


def test_an_admin_edit_that_changes_nothing_is_not_recorded(admin_web, project, trail):
    parcel = ParcelFactory(project=project)

    response = admin_web.post(
        f"/admin/registry/parcel/{parcel.pk}/change/", change_form_data(parcel)
    )

    assert response.status_code == 302
    assert trail() == []
    assert ParcelRevision.objects.count() == 0


def test_an_admin_edit_of_other_fields_names_them(
    admin_web, project, other_project, trail
):
    parcel = ParcelFactory(project=project, declared_area_m2=1500)

    admin_web.post(
        f"/admin/registry/parcel/{parcel.pk}/change/",
        change_form_data(parcel, project=other_project.pk, declared_area_m2="1550"),
    )

    [record] = trail()
    assert record.action == "parcel_edited"
    assert record.changes["project"] == {"from": "GM-SC", "to": "GM-L6"}
    assert record.changes["declared_area_m2"] == {"from": 1500.0, "to": 1550.0}
    assert record.project_code == "GM-L6"


def test_an_admin_edit_of_a_building_footprint_is_recorded(admin_web, project, trail):
    building = BuildingFactory(code="B-07", parcel=ParcelFactory(project=project))
    x0, y0, _x1, _y1 = building.parcel.geom.extent
    moved = square(x0 + 1, y0 + 1, 5)

    response = admin_web.post(
        f"/admin/registry/building/{building.pk}/change/",
        {
            "code": "B-07",
            "parcel": building.parcel_id,
            "footprint": moved.ewkt,
            "floors": 3,
            "floor_area_m2": 300,
            "legality": building.legality,
            "owner_group": building.owner_group,
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    [record] = trail()
    assert (record.action, record.object_kind, record.object_code) == (
        "geometry_change",
        "building",
        "B-07",
    )
    assert record.changes["area_m2"]["to"] == 25.0
    assert record.project_code == "GM-SC"


def test_an_admin_edit_of_a_project_boundary_is_recorded(admin_web, project, trail):
    x0, y0, x1, _y1 = project.boundary.extent
    smaller = square(x0, y0, (x1 - x0) / 2)

    response = admin_web.post(
        f"/admin/registry/project/{project.pk}/change/",
        {
            "code": project.code,
            "name_zh": project.name_zh,
            "name_en": project.name_en,
            "kind": project.kind,
            "street": project.street,
            "boundary": smaller.ewkt,
            "planned_area_m2": project.planned_area_m2,
            "start_date": "2024-01-01",
            "target_date": "2025-12-31",
            "_save": "Save",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    [record] = trail()
    assert (record.action, record.object_kind, record.project_code) == (
        "geometry_change",
        "project",
        "GM-SC",
    )
    assert record.changes["area_m2"] == {
        "from": 6250000.0,
        "to": 1562500.0,
    }
    assert record.changes["field"] == "boundary"


# -- roles and accounts -------------------------------------------------------


def test_granting_changing_and_revoking_a_role_in_the_admin_leaves_three_records(
    admin_web, registry_admin, project, other_project, trail
):
    newcomer = UserFactory(username="newcomer")

    admin_web.post(
        "/admin/registry/membership/add/",
        {"user": newcomer.pk, "role": "surveyor", "project": project.pk, "_save": "1"},
    )
    membership = Membership.objects.get(user=newcomer)
    admin_web.post(
        f"/admin/registry/membership/{membership.pk}/change/",
        {
            "user": newcomer.pk,
            "role": "case_officer",
            "project": other_project.pk,
            "_save": "1",
        },
    )
    admin_web.post(
        f"/admin/registry/membership/{membership.pk}/delete/", {"post": "yes"}
    )

    granted, changed, revoked = trail()
    assert [r.action for r in (granted, changed, revoked)] == [
        "role_granted",
        "role_changed",
        "role_revoked",
    ]
    for record in (granted, changed, revoked):
        assert (record.actor, record.object_kind, record.object_code) == (
            registry_admin,
            "user",
            "newcomer",
        )
        assert origin_of(record) == ("web", OFFICE, BROWSER, HOST)
    assert granted.changes == {"role": "surveyor", "project": "GM-SC"}
    assert granted.project_code == "GM-SC"
    assert changed.changes == {
        "from": {"role": "surveyor", "project": "GM-SC"},
        "to": {"role": "case_officer", "project": "GM-L6"},
    }
    assert revoked.changes == {"role": "case_officer", "project": "GM-L6"}
    assert revoked.project_code == "GM-L6"


def test_a_role_granted_from_a_shell_is_recorded_with_nobody_as_actor(db, trail):
    Membership.objects.create(user=UserFactory(username="u1"), role="planner")

    [record] = trail()
    assert (record.action, record.actor, record.actor_username) == (
        "role_granted",
        None,
        "",
    )
    assert (record.channel, record.host) == ("command", HOST)


def test_deactivating_a_user_is_recorded(db, trail):
    user = UserFactory(username="u4")

    user.is_active = False
    user.save(update_fields=["is_active"])

    [record] = trail()
    assert record.changes == {"is_active": {"from": True, "to": False}}


def test_making_a_user_superuser_or_staff_is_recorded(db, trail):
    user = UserFactory(username="u2")

    user.is_superuser = True
    user.is_staff = True
    user.save()
    user.last_name = "王"
    user.save()  # no rights changed: no record

    [record] = trail()
    assert (record.action, record.object_code) == ("account_flags", "u2")
    assert record.changes == {
        "is_superuser": {"from": False, "to": True},
        "is_staff": {"from": False, "to": True},
    }


def test_a_superuser_created_by_the_command_is_recorded(db, trail):
    call_command(
        "createsuperuser",
        username="root2",
        email="root2@example.org",
        interactive=False,
        stdout=StringIO(),
    )

    [record] = trail()
    assert (record.action, record.object_code, record.channel) == (
        "account_flags",
        "root2",
        "command",
    )
    assert record.changes["is_superuser"] == {"from": False, "to": True}


def test_logging_in_records_nothing(project, case_officer, trail):
    client = Client()
    assert client.login(username="case_officer", password="correct horse battery")

    assert trail() == []


def test_a_token_created_and_revoked_is_recorded_without_its_key(analyst, trail):
    token = Token.objects.create(user=analyst)
    key = token.key
    token.delete()

    created, revoked = trail()
    assert (created.action, revoked.action) == ("token_created", "token_revoked")
    assert created.object_code == "analyst"
    assert key not in str(created.changes) + str(revoked.changes)


# -- exports ------------------------------------------------------------------


@pytest.fixture
def two_banked(project, registry_admin):
    """Two parcels banked through the workflow (so they are in the history)."""
    for n in range(2):
        parcel = ParcelFactory(project=project, status="cleared")
        services.parcel_transition(
            parcel=parcel,
            to_status="banked",
            actor=registry_admin,
            banked_on="2025-06-30",
            bank_ref=f"LB-{n}",
        )


def test_an_export_through_the_api_leaves_one_record(
    analyst, project, two_banked, analyst_api, trail
):

    response = analyst_api.get("/api/exports/banked/?format=csv&project=GM-SC")

    assert response.status_code == 200
    [record] = trail()
    log = ExportLog.objects.get()
    assert (record.action, record.actor, record.object_id) == (
        "export",
        analyst,
        log.pk,
    )
    assert record.changes["format"] == "csv"
    assert record.changes["selection"]["project"] == "GM-SC"
    assert record.changes["export_log"] == log.pk
    assert record.project_code == "GM-SC"
    assert origin_of(record) == ("api", OFFICE, QGIS, HOST)


def test_an_export_by_the_command_records_its_count(
    analyst, project, two_banked, tmp_path, trail
):

    call_command(
        "export_banked",
        str(tmp_path / "banked.geojson"),
        "--user",
        "analyst",
        stdout=StringIO(),
    )

    [record] = trail()
    assert (record.action, record.actor, record.channel) == (
        "export",
        analyst,
        "command",
    )
    assert record.changes["features"] == 2
    assert record.changes["sha256"] == ExportLog.objects.get().sha256
    # Outside manage.py (here, pytest's call_command) the program's name.
    assert record.user_agent == Path(sys.argv[0]).name


def test_a_refused_export_leaves_no_record(planner, planner_api, trail):
    response = planner_api.get("/api/exports/banked/?format=csv")

    assert response.status_code == 403
    assert trail() == []


# -- from where ---------------------------------------------------------------


def test_x_forwarded_for_is_ignored_without_trusted_proxies(settings):
    settings.AUDIT_TRUSTED_PROXIES = []
    meta = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}

    assert client_address(meta) == "127.0.0.1"


def test_x_forwarded_for_names_the_client_behind_a_trusted_proxy(settings):
    settings.AUDIT_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]

    # A client may put anything on the left; the trusted hops are skipped
    # from the right and the first untrusted one is the client.
    assert (
        client_address(
            {
                "REMOTE_ADDR": "127.0.0.1",
                "HTTP_X_FORWARDED_FOR": "6.6.6.6, 192.0.2.7, 10.1.1.1",
            }
        )
        == "192.0.2.7"
    )
    # Not from the proxy: the header is anyone's.
    assert (
        client_address({"REMOTE_ADDR": "192.0.2.9", "HTTP_X_FORWARDED_FOR": "1.1.1.1"})
        == "192.0.2.9"
    )


def test_a_request_through_a_trusted_proxy_is_recorded_with_the_client(
    settings, project, case_officer, trail
):
    settings.AUDIT_TRUSTED_PROXIES = ["127.0.0.1"]
    parcel = ParcelFactory(project=project)
    token, _ = Token.objects.get_or_create(user=case_officer)

    Client(
        HTTP_AUTHORIZATION=f"Token {token.key}",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.44",
    ).post(
        f"/api/parcels/{parcel.pk}/transition/",
        {"to_status": "declared"},
        content_type="application/json",
    )

    assert [r.remote_addr for r in trail(action="status_move")] == ["192.0.2.44"]


def test_the_origin_is_forgotten_when_the_request_ends(
    project, case_officer, officer_api, trail
):
    parcel = ParcelFactory(project=project)
    officer_api.get("/api/parcels/?limit=1")

    services.parcel_transition(parcel=parcel, to_status="declared", actor=case_officer)

    assert [r.channel for r in trail()] == ["command"]


def test_a_job_carries_the_origin_it_was_queued_with():
    queued = Origin(channel="web", remote_addr=OFFICE, user_agent=BROWSER).as_job()

    carried = Origin.from_job(queued)

    assert (carried.channel, carried.remote_addr, carried.user_agent) == (
        "web",
        OFFICE,
        BROWSER,
    )
    assert carried.host == HOST
    assert Origin.from_job(None).channel == "worker"


# -- append-only --------------------------------------------------------------


@pytest.fixture
def record(registry_admin):
    with using(Origin(channel="web", remote_addr=OFFICE)):
        Membership.objects.create(user=UserFactory(username="u3"), role="analyst")
    return AuditRecord.objects.get(object_code="u3")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE registry_auditrecord SET actor_username = 'someone else'",
        "UPDATE registry_auditrecord SET changes = '{}'",
        "UPDATE registry_auditrecord SET remote_addr = '1.2.3.4'",
        "DELETE FROM registry_auditrecord",
    ],
)
def test_sql_cannot_rewrite_or_delete_a_record(record, statement):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)

    assert AuditRecord.objects.get(pk=record.pk).actor_username == ""


def test_sql_cannot_truncate_the_trail(record, trail):
    count = AuditRecord.objects.count()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # What the test suite allows itself (tests/conftest.py), taken back.
        cursor.execute("SET LOCAL registry.allow_audit_truncate = 'off'")
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("TRUNCATE registry_auditrecord")

    assert AuditRecord.objects.count() == count


def test_the_orm_cannot_change_or_delete_a_record(record):
    count = AuditRecord.objects.count()
    record.changes = {"forged": True}
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        record.save()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditRecord.objects.all().delete()

    assert AuditRecord.objects.count() == count
    assert AuditRecord.objects.get(pk=record.pk).changes != {"forged": True}


def test_an_actor_deleted_leaves_the_record_with_their_username(db):
    actor = UserFactory(username="gone")
    with using(Origin(channel="command")):
        audit.record("export", kind="export", actor=actor)

    actor.delete()

    record = AuditRecord.objects.get(action="export")
    assert (record.actor, record.actor_username) == (None, "gone")


def test_the_admin_grants_nobody_any_write_on_the_trail(
    rf, registry_admin, record, trail
):
    request = rf.get("/admin/")
    request.user = registry_admin
    model_admin = AuditRecordAdmin(AuditRecord, admin_site)

    assert model_admin.has_view_permission(request, record)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, record)
    assert not model_admin.has_delete_permission(request, record)


def test_the_admin_refuses_to_add_change_or_delete_a_record(admin_web, record):
    base = "/admin/registry/auditrecord/"

    assert admin_web.get(f"{base}add/").status_code == 403
    assert admin_web.post(f"{base}add/", {"action": "export"}).status_code == 403
    assert (
        admin_web.post(f"{base}{record.pk}/change/", {"changes": "{}"}).status_code
        == 403
    )
    assert (
        admin_web.post(f"{base}{record.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    listed = admin_web.get(base)
    assert listed.status_code == 200
    assert "delete_selected" not in listed.content.decode()
    assert AuditRecord.objects.get(pk=record.pk).changes == record.changes
