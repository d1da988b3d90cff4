"""The admin site: for registry administrators only, writing through the services."""

import html
import re

import pytest

from registry import services
from registry.models import Building, BuildingStatusChange, Parcel, ParcelStatusChange
from tests.factories import BuildingFactory, ParcelFactory, UserFactory, parcel_square
from tests.registry.helpers import change_form_data, parcel_state

pytestmark = pytest.mark.django_db

NON_ADMINS = ["planner", "analyst", "surveyor", "case_officer"]
EXTERNAL_ASSET = re.compile(
    r"<(?:script[^>]*\ssrc|link[^>]*\shref)=[\"'](?:https?:)?//", re.IGNORECASE
)


@pytest.fixture
def admin_client(login, registry_admin):
    return login(registry_admin, language="en")


def change_url(parcel) -> str:
    return f"/admin/registry/parcel/{parcel.pk}/change/"


def result_codes(response) -> list[str]:
    return [p.code for p in response.context["cl"].result_list]


# -- who gets in ---------------------------------------------------------------------


def test_a_user_without_a_role_is_refused_the_admin(login, outsider):
    response = login(outsider).get("/admin/", follow=True)

    assert response.status_code == 403
    assert len(response.redirect_chain) <= 1, "no redirect loop back to login"


def test_staff_status_without_the_role_does_not_open_the_admin(login):
    staff = UserFactory(is_staff=True)

    assert login(staff).get("/admin/", follow=True).status_code == 403


@pytest.mark.parametrize("persona", NON_ADMINS)
def test_other_roles_are_refused_the_admin(persona, request, login):
    client = login(request.getfixturevalue(persona))

    assert client.get("/admin/", follow=True).status_code == 403
    assert client.get("/admin/registry/parcel/", follow=True).status_code == 403


def test_the_registry_admin_opens_the_admin_index(admin_client):
    response = admin_client.get("/admin/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Guangming land consolidation registry" in page
    for model in ["parcel", "project", "building", "parcelstatuschange", "membership"]:
        assert f"/admin/registry/{model}/" in page


def test_a_superuser_opens_the_admin_as_a_registry_admin(login):
    root = UserFactory(is_superuser=True, is_staff=True)

    assert login(root).get("/admin/").status_code == 200


def test_a_membership_granted_in_the_admin_opens_the_admin_at_once(
    admin_client, login, planner
):
    newcomer = UserFactory(username="newcomer")
    newcomer_client = login(newcomer)
    assert newcomer_client.get("/admin/", follow=True).status_code == 403

    response = admin_client.post(
        "/admin/registry/membership/add/",
        {"user": newcomer.pk, "role": "registry_admin", "project": "", "_save": "Save"},
    )

    assert response.status_code == 302
    assert newcomer_client.get("/admin/").status_code == 200


# -- parcel changelist ---------------------------------------------------------------


@pytest.fixture
def parcels(project, other_project):
    return {
        "GM-SC-0001": ParcelFactory(
            code="GM-SC-0001", project=project, land_class="collective"
        ),
        "GM-SC-0002": ParcelFactory(
            code="GM-SC-0002",
            project=project,
            land_class="state_farm",
            status="cleared",
        ),
        "GM-L6-0001": ParcelFactory(
            code="GM-L6-0001",
            project=other_project,
            land_class="state_farm",
            status="banked",
        ),
    }


def test_the_parcel_changelist_lists_every_parcel(admin_client, parcels):
    response = admin_client.get("/admin/registry/parcel/")

    assert response.status_code == 200
    assert result_codes(response) == ["GM-L6-0001", "GM-SC-0001", "GM-SC-0002"]
    page = response.content.decode()
    for code in parcels:
        assert code in page


def test_the_changelist_offers_filters_by_project_land_class_and_status(
    admin_client, parcels, project
):
    page = admin_client.get("/admin/registry/parcel/").content.decode()

    assert f"project__id__exact={project.pk}" in page
    assert "land_class__exact=state_farm" in page
    assert "status__exact=banked" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("project__id__exact={project}", ["GM-SC-0001", "GM-SC-0002"]),
        ("land_class__exact=state_farm", ["GM-L6-0001", "GM-SC-0002"]),
        ("status__exact=cleared", ["GM-SC-0002"]),
        ("status__exact=banked&land_class__exact=state_farm", ["GM-L6-0001"]),
        ("q=GM-SC-0002", ["GM-SC-0002"]),
        ("q=GM-SC", ["GM-SC-0001", "GM-SC-0002"]),
        ("q=nothing-like-this", []),
    ],
)
def test_the_changelist_filters_and_searches(
    query, expected, admin_client, parcels, project
):
    response = admin_client.get(
        "/admin/registry/parcel/?" + query.format(project=project.pk)
    )

    assert response.status_code == 200
    assert result_codes(response) == expected


def test_the_changelist_searches_land_bank_references(admin_client, parcels):
    bank_ref = parcels["GM-L6-0001"].bank_ref

    response = admin_client.get(f"/admin/registry/parcel/?q={bank_ref}")

    assert result_codes(response) == ["GM-L6-0001"]


# -- parcel change page --------------------------------------------------------------


def test_the_change_page_has_an_offline_map(admin_client, parcels):
    parcel = parcels["GM-SC-0001"]

    response = admin_client.get(change_url(parcel))

    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/vendor/ol/ol.js" in page
    assert "/static/vendor/ol/ol.css" in page
    assert "cdn.jsdelivr" not in page
    assert "openstreetmap" not in page.lower()
    assert not EXTERNAL_ASSET.search(page), EXTERNAL_ASSET.search(page).group(0)


def test_the_add_page_map_is_offline_too(admin_client):
    page = admin_client.get("/admin/registry/parcel/add/").content.decode()

    assert "/static/vendor/ol/ol.js" in page
    assert not EXTERNAL_ASSET.search(page)


def test_the_change_page_offers_only_the_moves_the_workflow_allows(
    admin_client, parcels
):
    response = admin_client.get(change_url(parcels["GM-SC-0002"]))

    choices = dict(response.context["adminform"].form.fields["new_status"].choices)
    assert set(choices) == {"", "banked", "signed", "verified", "declared", "surveyed"}


def test_changing_the_status_in_the_admin_goes_through_the_workflow(
    admin_client, registry_admin, parcels
):
    parcel = parcels["GM-SC-0001"]

    response = admin_client.post(
        change_url(parcel),
        change_form_data(parcel, new_status="declared", evidence_ref="申报表 17"),
    )

    assert response.status_code == 302
    assert Parcel.objects.get(pk=parcel.pk).status == "declared"
    row = ParcelStatusChange.objects.get(parcel=parcel)
    assert (row.move, row.from_status, row.to_status) == (
        "advance",
        "surveyed",
        "declared",
    )
    assert row.actor == registry_admin
    assert row.evidence_ref == "申报表 17"


def test_editing_a_parcel_in_the_admin_keeps_its_status_and_history(
    admin_client, parcels
):
    parcel = parcels["GM-SC-0002"]
    before = parcel_state(parcel)

    response = admin_client.post(
        change_url(parcel), change_form_data(parcel, declared_area_m2="1550")
    )

    assert response.status_code == 302
    stored = Parcel.objects.get(pk=parcel.pk)
    assert stored.declared_area_m2 == 1550
    assert stored.status == before["status"]
    assert parcel_state(parcel)["history"] == before["history"]


def test_banking_in_the_admin_records_the_reference(admin_client, parcels):
    parcel = parcels["GM-SC-0002"]

    admin_client.post(
        change_url(parcel),
        change_form_data(
            parcel,
            new_status="banked",
            new_banked_on="2025-06-30",
            new_bank_ref="LB-2025-0077",
        ),
    )

    stored = Parcel.objects.get(pk=parcel.pk)
    assert (stored.status, str(stored.banked_on), stored.bank_ref) == (
        "banked",
        "2025-06-30",
        "LB-2025-0077",
    )


def test_skipping_a_stage_in_the_admin_is_refused_and_changes_nothing(
    admin_client, parcels
):
    parcel = parcels["GM-SC-0001"]
    before = parcel_state(parcel)

    response = admin_client.post(
        change_url(parcel), change_form_data(parcel, new_status="signed")
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "new_status" in errors
    assert "signed" in str(errors["new_status"])
    assert parcel_state(parcel) == before


def form_error(response) -> str:
    """Return the refusal the change form shows above its fields."""
    return " ".join(response.context["adminform"].form.non_field_errors())


def test_a_reopen_without_reason_shows_the_bilingual_refusal(
    admin_client, registry_admin, parcels
):
    parcel = parcels["GM-SC-0002"]
    before = parcel_state(parcel)
    expected = services.transition_refusal(
        parcel=parcel, to_status="signed", actor=registry_admin
    )

    response = admin_client.post(
        change_url(parcel), change_form_data(parcel, new_status="signed")
    )

    assert response.status_code == 200
    assert form_error(response) == expected.bilingual
    assert " / " in form_error(response)
    assert "needs a reason" in form_error(response)
    assert html.escape(expected.en) in response.content.decode()
    assert parcel_state(parcel) == before


def test_clearing_with_an_unsigned_building_names_it_on_the_form(admin_client, project):
    parcel = ParcelFactory(project=project, status="signed")
    BuildingFactory(parcel=parcel, code="GM-SC-B-0031")
    before = parcel_state(parcel)

    response = admin_client.post(
        change_url(parcel), change_form_data(parcel, new_status="cleared")
    )

    assert response.status_code == 200
    assert "GM-SC-B-0031" in form_error(response)
    assert " / " in form_error(response)
    assert parcel_state(parcel) == before


def test_banking_without_a_reference_is_refused_on_the_form(admin_client, parcels):
    parcel = parcels["GM-SC-0002"]
    before = parcel_state(parcel)

    response = admin_client.post(
        change_url(parcel),
        change_form_data(parcel, new_status="banked", new_banked_on="2025-06-30"),
    )

    assert response.status_code == 200
    assert "land bank reference" in form_error(response)
    assert parcel_state(parcel) == before


def test_parcels_cannot_be_deleted_in_the_admin(admin_client, parcels):
    parcel = parcels["GM-SC-0001"]

    response = admin_client.post(
        f"/admin/registry/parcel/{parcel.pk}/delete/", {"post": "yes"}
    )

    assert response.status_code == 403
    assert Parcel.objects.filter(pk=parcel.pk).exists()


def test_a_parcel_added_in_the_admin_is_registered_with_its_history(
    admin_client, registry_admin, project
):
    response = admin_client.post(
        "/admin/registry/parcel/add/",
        {
            "code": "GM-SC-0900",
            "project": project.pk,
            "land_class": "unfinished_expropriation",
            "street": "",
            "geom": parcel_square(project, 90, 40).ewkt,
            "declared_area_m2": "",
            "_save": "Save",
        },
    )

    assert response.status_code == 302
    parcel = Parcel.objects.get(code="GM-SC-0900")
    assert parcel.status == "surveyed"
    assert parcel.street == project.street
    assert parcel.area_m2 == pytest.approx(1_600)
    row = parcel.history.get()
    assert (row.move, row.to_status, row.actor) == (
        "create",
        "surveyed",
        registry_admin,
    )


# -- history is read-only ------------------------------------------------------------


@pytest.fixture
def history_row(project, surveyor):
    parcel = services.parcel_create(
        code="GM-SC-H-0001",
        land_class="collective",
        geom=parcel_square(project, 0, 40),
        actor=surveyor,
        project=project,
    )
    return parcel.history.get()


def test_the_history_is_listed_for_the_admin(admin_client, history_row):
    response = admin_client.get("/admin/registry/parcelstatuschange/")

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [history_row]
    assert "/admin/registry/parcelstatuschange/add/" not in response.content.decode()


def test_the_history_cannot_be_added_to_in_the_admin(admin_client, history_row):
    response = admin_client.post(
        "/admin/registry/parcelstatuschange/add/",
        {
            "parcel": history_row.parcel_id,
            "move": "advance",
            "from_status": "surveyed",
            "to_status": "banked",
            "actor": history_row.actor_id,
        },
    )

    assert response.status_code == 403
    assert ParcelStatusChange.objects.count() == 1


def test_a_history_row_is_shown_read_only(admin_client, history_row):
    url = f"/admin/registry/parcelstatuschange/{history_row.pk}/change/"

    response = admin_client.get(url)

    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    assert admin_client.post(url, {"reason": "rewritten"}).status_code == 403
    history_row.refresh_from_db()
    assert history_row.reason == ""


def test_a_history_row_cannot_be_deleted_in_the_admin(admin_client, history_row):
    url = f"/admin/registry/parcelstatuschange/{history_row.pk}/delete/"

    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert ParcelStatusChange.objects.filter(pk=history_row.pk).exists()


def test_the_history_admin_grants_no_write_permission(rf, registry_admin):
    from registry.admin import admin_site

    request = rf.get("/admin/")
    request.user = registry_admin
    for model_admin in [
        admin_site._registry[ParcelStatusChange],
        admin_site._registry[BuildingStatusChange],
    ]:
        assert model_admin.has_view_permission(request)
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)


# -- buildings -----------------------------------------------------------------------


def test_marking_buildings_signed_goes_through_the_service(
    admin_client, registry_admin, project
):
    parcel = ParcelFactory(project=project)
    buildings = BuildingFactory.create_batch(2, parcel=parcel)

    response = admin_client.post(
        "/admin/registry/building/",
        {
            "action": "mark_signed",
            "_selected_action": [b.pk for b in buildings],
        },
        follow=True,
    )

    assert response.status_code == 200
    assert set(Building.objects.values_list("status", flat=True)) == {"signed"}
    rows = BuildingStatusChange.objects.filter(building__in=buildings)
    assert {(r.from_status, r.to_status, r.actor_id) for r in rows} == {
        ("unsigned", "signed", registry_admin.pk)
    }
    assert "2 building(s) marked" in response.content.decode()


def test_a_refused_building_step_is_reported_and_changes_nothing(admin_client, project):
    parcel = ParcelFactory(project=project)
    building = BuildingFactory(parcel=parcel, code="GM-SC-B-0050")

    response = admin_client.post(
        "/admin/registry/building/",
        {"action": "mark_demolished", "_selected_action": [building.pk]},
        follow=True,
    )

    page = response.content.decode()
    assert "GM-SC-B-0050" in page
    assert "cannot go from" in page
    assert Building.objects.get(pk=building.pk).status == "unsigned"
    assert not BuildingStatusChange.objects.exists()


def test_an_invalid_geometry_is_refused_on_the_add_form(admin_client, project):
    bowtie = (
        "SRID=4547;MULTIPOLYGON(((492000 2517000, 492100 2517100,"
        " 492100 2517000, 492000 2517100, 492000 2517000)))"
    )

    response = admin_client.post(
        "/admin/registry/parcel/add/",
        {
            "code": "GM-SC-0901",
            "project": project.pk,
            "land_class": "collective",
            "street": "",
            "geom": bowtie,
            "declared_area_m2": "",
            "_save": "Save",
        },
    )

    assert response.status_code == 200
    assert "The geometry is not valid." in response.content.decode()
    assert not Parcel.objects.exists()


def test_a_duplicate_parcel_code_is_refused_on_the_add_form(admin_client, project):
    ParcelFactory(project=project, code="GM-SC-0902")

    response = admin_client.post(
        "/admin/registry/parcel/add/",
        {
            "code": "GM-SC-0902",
            "project": project.pk,
            "land_class": "collective",
            "street": "",
            "geom": parcel_square(project, 91, 40).ewkt,
            "declared_area_m2": "",
            "_save": "Save",
        },
    )

    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert Parcel.objects.filter(code="GM-SC-0902").count() == 1
    assert not ParcelStatusChange.objects.exists()


def test_a_surveyor_membership_without_project_is_refused_on_the_form(
    admin_client, outsider
):
    response = admin_client.post(
        "/admin/registry/membership/add/",
        {"user": outsider.pk, "role": "surveyor", "project": "", "_save": "Save"},
    )

    assert response.status_code == 200
    assert "Surveyors and case officers need a project" in response.content.decode()
    assert not outsider.memberships.exists()
