"""Every URL of the URL conf × every persona × every method → the expected status.

The routes come from ``get_resolver()`` (``tests/config/urlconf_walk.py``); the
expected statuses from the rule table in ``tests/config/access_rules.py``. A
route without a rule fails the test by name, so an endpoint cannot be added
without someone deciding who may use it.

Three more promises are checked on the same requests:

- no GET writes to the database: PostgreSQL's own per-transaction counters
  (``pg_stat_xact_user_tables``: rows inserted, updated and deleted in every
  table) are read before and after each GET and must not move, except in the
  tables that record reads for the record (``access_rules.READ_RECORDS``);
- every state-changing request made with a session but without the CSRF token
  is refused with 403;
- an anonymous visitor is sent to the login page (pages) or refused (APIs,
  tiles), never served;
- every answer carries ``X-Content-Type-Options: nosniff``, and no answer of
  an API, tile or JSON route is ``text/html``;
- a method no rule names is answered 405 (outside the admin site).

Set ``ACCESS_MATRIX_DUMP=path`` to write the statuses observed (a table to read
when a rule needs changing).
"""

import json
import os
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from fixtures.models import DemoLoad
from importers.models import ImportBatch, SavedMapping
from registry import services
from registry.choices import BuildingStatus, LandClass
from registry.models import ExportLog, ParcelRevision
from tests.config import access_rules
from tests.config.access_rules import PERSONAS, UNSAFE
from tests.config.urlconf_walk import admin_model, concrete, routes
from tests.factories import BuildingFactory, parcel_square
from tests.tilesvc.conftest import tile_of
from tests.tilesvc.test_imagery import place_in, write_geotiff
from tilesvc import imagery

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(
    settings,
    tmp_path,
    project,
    other_project,
    outsider,
    surveyor_elsewhere,
    surveyor,
    case_officer,
    planner,
    analyst,
    registry_admin,
):
    """Build one of everything a route can name, and return the values of its ids."""
    settings.IMAGERY_DIR = tmp_path / "imagery"
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    parcel = services.parcel_create(
        code="GM-SC-0001",
        land_class=LandClass.COLLECTIVE,
        geom=parcel_square(project, 0, 40),
        actor=registry_admin,
        project=project,
    )
    building = BuildingFactory(parcel=parcel)
    services.building_set_status(
        building=building, to_status=BuildingStatus.SIGNED, actor=registry_admin
    )
    # Checked batches, one for the pages and one for the API (each is
    # committed by the first who may). Stored uploads are removed once no
    # batch needs them: a recheck is told the file is gone.
    batch, api_batch = (
        ImportBatch.objects.create(
            project=project,
            layer="parcels",
            created_by=surveyor,
            file_name=name,
            sha256="0" * 64,
            size_bytes=1,
            state=ImportBatch.State.CHECKED,
            upload_path=str(tmp_path / "uploads" / "gone.zip"),
        )
        for name in ("survey.zip", "survey-api.zip")
    )
    ParcelRevision.objects.create(
        parcel=parcel,
        kind=ParcelRevision.Kind.UPDATED,
        import_batch_id=batch.pk,
        actor=surveyor,
        at=timezone.now(),
    )
    SavedMapping.objects.create(
        project=project,
        name="standard",
        layer="parcels",
        source_key="code",
        mapping={"layer": "parcels", "fields": {"code": "CODE"}},
        created_by=surveyor,
    )
    ExportLog.objects.create(user=analyst, format="csv", selection={}, channel="api")
    Token.objects.create(user=planner)
    Group.objects.create(name="测绘队")
    login_seen = {
        "username": "planner",
        "ip_address": "10.0.0.9",
        "user_agent": "Firefox",
        "http_accept": "text/html",
        "path_info": "/accounts/login/",
    }
    AccessAttempt.objects.create(
        **login_seen, get_data="", post_data="", failures_since_start=1
    )
    AccessLog.objects.create(**login_seen)
    DemoLoad.objects.create(
        scale=1,
        generator_version=1,
        seed=1,
        projects=2,
        parcels=1,
        buildings=1,
        history_rows=1,
        seconds=0.1,
    )
    place = place_in(project)
    orthophoto = imagery.orthophoto_ingest(
        project=project,
        upload_path=write_geotiff(
            tmp_path / "ortho.tif", west=place.west, north=place.north
        ),
        title="科学城 2026-11",
        actor=surveyor,
    )
    tile = tile_of(parcel.geom, 16)
    by_prefix = {
        "imports/": batch.pk,
        "api/imports/": api_batch.pk,
        "api/parcels/": parcel.pk,
        "imagery/": orthophoto.pk,
    }
    fixed = {
        "code": project.code,
        "project_id": project.pk,
        "collection_id": "parcels",
        "feature_id": parcel.pk,
        "layer": "parcels",
        "content_type_id": ContentType.objects.get_for_model(type(project)).pk,
        "id": surveyor.pk,  # admin/auth/user/<id>/password/
        "app_label": "registry",  # the admin's app index (a re_path)
        "url": "no-such-page/",  # the admin's catch-all (404 for admins)
    }

    def value(route: str, name: str):
        if route.startswith("imagery/") and name in ("z", "x", "y"):
            return getattr(place.tile, name)
        if name in ("z", "x", "y"):
            return getattr(tile, name)
        if name == "pk":
            for prefix, pk in sorted(by_prefix.items(), key=lambda kv: -len(kv[0])):
                if route.startswith(prefix):
                    return pk
        if name == "object_id":
            model = admin_model(route)
            if model is not None:
                row = model._default_manager.order_by("pk").first()
                if row is None:
                    raise LookupError(f"the world has no {model.__name__} for {route}")
                return row.pk
            if route.startswith("admin/r/"):
                return project.pk
        if name in fixed:
            return fixed[name]
        raise LookupError(f"no value for <{name}> in route {route!r}")

    return value


def _writes() -> dict[str, tuple[int, int, int]]:
    """Return rows inserted, updated, deleted per table in this transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del "
            "FROM pg_stat_xact_user_tables WHERE schemaname = 'public'"
        )
        return {name: tuple(counts) for name, *counts in cursor.fetchall()}


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(
        name
        for name, counts in after.items()
        if counts != before.get(name, (0, 0, 0))
        and name not in access_rules.READ_RECORDS
    )


def test_the_write_detector_sees_an_insert_an_update_and_a_delete(world):
    """The counters the matrix trusts do move when a table is written to."""
    before = _writes()
    group = Group.objects.create(name="检查")
    inserted = _writes()
    Group.objects.filter(pk=group.pk).update(name="检查2")
    updated = _writes()
    group.delete()

    assert _changed(before, inserted) == ["auth_group"]
    assert _changed(inserted, updated) == ["auth_group"]
    assert _changed(updated, _writes()) == ["auth_group"]


def _client(request, persona: str, **kwargs) -> Client:
    client = Client(**kwargs)
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    return client


def _send(client: Client, method: str, url: str):
    response = getattr(client, method.lower())(url)
    if response.streaming:  # an export: read to the end, as a client would
        b"".join(response.streaming_content)
    return response


def _serves_data(route: str) -> bool:
    """Return whether the route answers with data for programs (never HTML)."""
    if route == "api/docs/":  # Swagger UI, a page for people
        return False
    return route.startswith(("api/", "ogcapi/", "tiles/")) or route.endswith(
        (".json", ".mvt", ".png", ".webp")
    )


def _ruled_routes():
    ruled, unruled = [], []
    for route in routes():
        rule = access_rules.rule_for(route.route)
        if rule is None:
            unruled.append(f"{route.route} ({route.view})")
        else:
            ruled.append((route, rule))
    return ruled, unruled


def test_every_route_has_an_access_rule():
    _ruled, unruled = _ruled_routes()

    assert not unruled, (
        "routes without an access rule in tests/config/access_rules.py: "
        + ", ".join(unruled)
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_route_answers_each_persona_as_its_rule_says(request, persona, world):
    client = _client(request, persona)
    ruled, _unruled = _ruled_routes()
    observed, wrong, writes = {}, [], []
    for route, rule in ruled:
        url = concrete(route.route, world)
        for method, expected in rule.items():
            # A POST may log out: each gets a session of its own.
            sender = _client(request, persona) if method in UNSAFE else client
            before = _writes() if method == "GET" else None
            response = _send(sender, method, url)
            status = response.status_code
            observed.setdefault(route.route, {})[method] = status
            said = f"{method} {url} as {persona}"
            if before is not None and (changed := _changed(before, _writes())):
                writes.append(f"{said} wrote to {changed}")
            if status != expected[persona]:
                wrong.append(f"{said}: {status}, the rule says {expected[persona]}")
            if response.get("X-Content-Type-Options") != "nosniff":
                wrong.append(f"{said}: no X-Content-Type-Options: nosniff")
            if _serves_data(route.route) and response.get(
                "Content-Type", ""
            ).startswith("text/html"):
                wrong.append(f"{said}: answered as text/html")
            if persona == "anonymous" and status == 302:
                location = response["Location"]
                allowed = access_rules.ANONYMOUS_REDIRECTS.get(route.route)
                if location != allowed and not location.startswith(
                    ("/accounts/login/?next=", "/admin/login/?next=")
                ):
                    wrong.append(f"{said}: sent to {location}, not to log in")
    if dump := os.environ.get("ACCESS_MATRIX_DUMP"):
        path = Path(dump)
        known = json.loads(path.read_text()) if path.exists() else {}
        for route_text, methods in observed.items():
            for method, status in methods.items():
                known.setdefault(route_text, {}).setdefault(method, {})[persona] = (
                    status
                )
        path.write_text(json.dumps(known, indent=1, ensure_ascii=False))
    assert not writes, "\n".join(writes)
    assert not wrong, "\n".join(wrong)


def test_every_state_changing_request_without_a_csrf_token_is_refused(request, world):
    """A session's POST, PUT, PATCH or DELETE without the token gets 403."""
    ruled, _unruled = _ruled_routes()
    for persona in ("registry_admin", "surveyor"):
        client = _client(request, persona, enforce_csrf_checks=True)
        accepted = []
        for route, rule in ruled:
            url = concrete(route.route, world)
            for method in UNSAFE:
                if method not in rule:
                    continue
                before = _writes()
                response = _send(client, method, url)
                if response.status_code != 403 or _changed(before, _writes()):
                    accepted.append(f"{method} {url}: {response.status_code}")
        assert not accepted, f"as {persona}, without CSRF: " + ", ".join(accepted)


def test_a_method_no_rule_names_is_not_allowed(request, world):
    """The rules list every method a view takes: the others are answered 405.

    The admin site's views answer any other method as they answer GET (and
    change nothing), so its routes are left out.
    """
    client = _client(request, "registry_admin")
    ruled, _unruled = _ruled_routes()
    taken = []
    for route, rule in ruled:
        if route.route.startswith("admin/"):
            continue
        url = concrete(route.route, world)
        for method in ("GET", *UNSAFE):
            if method in rule:
                continue
            before = _writes()
            response = _send(client, method, url)
            # A view that sends this persona away whatever it asks (the login
            # page, once logged in) answers before it looks at the method.
            away = rule.get("GET", {}).get("registry_admin") == 302
            refused = (302,) if away else (405,)
            if response.status_code not in refused or _changed(before, _writes()):
                taken.append(f"{method} {url}: {response.status_code}")
    assert not taken, "methods taken that no rule names: " + ", ".join(taken)
