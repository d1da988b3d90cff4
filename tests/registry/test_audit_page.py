"""The audit trail page (/audit/) and its CSV: who may read what, filters, pages."""

import csv
import datetime
import io
from zoneinfo import ZoneInfo

import pytest
import time_machine

from registry import audit, services
from registry.audit_origin import Origin, using
from registry.choices import Role
from registry.models import AuditRecord
from tests.factories import ParcelFactory, user_with_role

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
PAGE, CSV = "/audit/", "/audit/records.csv"
MARCH = {"since": "2026-03-01", "until": "2026-03-31"}


def at(day: int, hour: int = 10) -> datetime.datetime:
    return datetime.datetime(2026, 3, day, hour, tzinfo=SHANGHAI)


@pytest.fixture
def trail(project, other_project, case_officer, case_officer_elsewhere, analyst):
    """March's records: a move in each project, a bulk move, a district export.

    (Setting up the personas recorded their roles too, in December.)
    """
    mine = ParcelFactory(code="GM-SC-0001", project=project)
    theirs = ParcelFactory(code="GM-L6-0001", project=other_project)
    second = ParcelFactory(code="GM-SC-0002", project=project)
    with (
        time_machine.travel(at(2), tick=False),
        using(Origin(channel="web", remote_addr="10.0.0.2", user_agent="Edge")),
    ):
        services.parcel_transition(
            parcel=mine, to_status="declared", actor=case_officer
        )
    with (
        time_machine.travel(at(3), tick=False),
        using(Origin(channel="api", remote_addr="10.0.0.3", user_agent="QGIS")),
    ):
        services.parcel_transition(
            parcel=theirs, to_status="declared", actor=case_officer_elsewhere
        )
    with time_machine.travel(at(4), tick=False):
        services.parcel_transition(
            parcel=second, to_status="declared", actor=case_officer
        )
        services.parcel_transition_bulk(
            parcels=[mine, second], to_status="verified", actor=case_officer
        )
    with time_machine.travel(at(5, 23), tick=False):
        audit.record("export", kind="export", actor=analyst, changes={"format": "csv"})


def shown(response) -> list[tuple[str, str]]:
    """Return (action, object code) of each record on the page, in order."""
    return [
        (r.action, r.object_code) for r, _kind, _summary in response.context["rows"]
    ]


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


@pytest.fixture
def admin_page(login, registry_admin):
    return login(registry_admin, language="en")


# -- who may read -------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client):
    for url in (PAGE, CSV):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["outsider", "planner", "analyst"])
def test_users_without_a_project_role_are_refused(persona, request, login):
    client = login(request.getfixturevalue(persona))

    assert client.get(PAGE).status_code == 403
    assert client.get(CSV).status_code == 403


def test_the_registry_admin_reads_every_record_with_its_origin(admin_page, trail):
    response = admin_page.get(PAGE, MARCH)

    assert response.status_code == 200
    assert shown(response) == [
        ("export", ""),
        ("bulk_move", ""),
        ("status_move", "GM-SC-0002"),
        ("status_move", "GM-L6-0001"),
        ("status_move", "GM-SC-0001"),
    ]
    page = response.content.decode()
    assert "10.0.0.3" in page and "QGIS" in page
    assert "remote address" in page


def test_a_case_officer_reads_their_projects_records_without_origins(
    login, case_officer, trail
):
    response = login(case_officer, language="en").get(PAGE)

    assert response.status_code == 200
    assert shown(response) == [
        ("role_granted", "case_officer"),
        ("bulk_move", ""),
        ("status_move", "GM-SC-0002"),
        ("status_move", "GM-SC-0001"),
    ]
    page = response.content.decode()
    assert "10.0.0.2" not in page and "Edge" not in page
    assert "remote address" not in page
    # Another project cannot be asked for either.
    assert login(case_officer).get(PAGE, {"project": "GM-L6"}).status_code == 400


@pytest.mark.parametrize("persona", ["registry_admin", "case_officer", "surveyor"])
def test_the_page_is_read_only(persona, request, login):
    client = login(request.getfixturevalue(persona))

    for url in (PAGE, CSV):
        assert client.get(url).status_code == 200
        assert client.post(url).status_code == 405
        assert client.delete(url).status_code == 405


def test_a_surveyor_of_another_project_reads_none_of_this_ones(
    login, other_project, trail
):
    elsewhere = user_with_role(Role.SURVEYOR, other_project, username="elsewhere")

    response = login(elsewhere).get(PAGE, MARCH)

    assert shown(response) == [("status_move", "GM-L6-0001")]


def test_the_page_is_chinese_first(login, registry_admin, trail):
    page = login(registry_admin).get(PAGE).content.decode()

    assert "审计记录" in page
    assert "状态变更" in page


# -- filters ------------------------------------------------------------------


def test_a_date_range_includes_both_whole_days(admin_page, trail):
    response = admin_page.get(PAGE, {"since": "2026-03-03", "until": "2026-03-04"})

    assert shown(response) == [
        ("bulk_move", ""),
        ("status_move", "GM-SC-0002"),
        ("status_move", "GM-L6-0001"),
    ]


def test_days_are_shanghai_days(admin_page, trail):
    # The export was at 23:00 Shanghai time on 5 March (15:00 UTC).
    response = admin_page.get(PAGE, {"since": "2026-03-05", "until": "2026-03-05"})

    assert shown(response) == [("export", "")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"actor": "case_officer"},
            [
                ("bulk_move", ""),
                ("status_move", "GM-SC-0002"),
                ("status_move", "GM-SC-0001"),
            ],
        ),
        ({"action": "export"}, [("export", "")]),
        ({"project": "GM-L6"}, [("status_move", "GM-L6-0001")]),
        ({"channel": "api"}, [("status_move", "GM-L6-0001")]),
        # A parcel's code finds its own moves and the bulk moves that held it.
        (
            {"code": "GM-SC-0001"},
            [("bulk_move", ""), ("status_move", "GM-SC-0001")],
        ),
        (
            {"actor": "case_officer", "channel": "web"},
            [("status_move", "GM-SC-0001")],
        ),
    ],
)
def test_each_filter_narrows_the_records(admin_page, trail, query, expected):
    response = admin_page.get(PAGE, {**MARCH, **query})

    assert response.status_code == 200
    assert shown(response) == expected


def test_a_range_ending_before_it_starts_is_refused_with_the_reason(admin_page):
    response = admin_page.get(PAGE, {"since": "2026-03-05", "until": "2026-03-01"})

    assert response.status_code == 400
    assert "2026-03-01 is before the start date 2026-03-05" in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [{"since": "yesterday"}, {"action": "forged"}, {"channel": "x"}, {"before": "a"}],
)
def test_malformed_filters_are_refused(admin_page, query):
    assert admin_page.get(PAGE, query).status_code == 400
    assert admin_page.get(CSV, query).status_code == 400


# -- pages and CSV ------------------------------------------------------------


def test_pages_go_from_the_newest_to_the_oldest(admin_page, registry_admin):
    start = datetime.datetime(2026, 1, 1, tzinfo=SHANGHAI)
    for n in range(120):
        # Two records share each moment: the keyset must not skip or repeat.
        with time_machine.travel(start + datetime.timedelta(minutes=n // 2)):
            audit.record(
                "export", kind="export", code=f"E{n:03d}", actor=registry_admin
            )
    query = {"action": "export"}

    seen, response = [], admin_page.get(PAGE, query)
    while True:
        seen += [code for _action, code in shown(response)]
        if response.context["next_query"] is None:
            break
        response = admin_page.get(f"{PAGE}?{response.context['next_query']}")

    assert seen == [f"E{n:03d}" for n in reversed(range(120))]
    assert len(admin_page.get(PAGE, query).context["rows"]) == 50


def test_the_csv_holds_the_filtered_records(admin_page, trail):
    response = admin_page.get(CSV, {**MARCH, "project": "GM-SC"})

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="audit.csv"' in response["Content-Disposition"]
    header, *rows = csv_rows(response)
    assert header[:3] == ["when", "actor", "action"]
    assert header[-3:] == ["remote address", "user agent", "host"]
    assert [(row[2], row[5]) for row in rows] == [
        ("Status moved in bulk", ""),
        ("Status moved", "GM-SC-0002"),
        ("Status moved", "GM-SC-0001"),
    ]
    assert rows[-1][0] == "2026-03-02T10:00:00+08:00"
    assert rows[-1][1] == "case_officer"
    assert rows[-1][-3:-1] == ["10.0.0.2", "Edge"]


def test_a_case_officers_csv_has_no_origins(login, case_officer, trail):
    response = login(case_officer, language="en").get(CSV, MARCH)

    header, *rows = csv_rows(response)
    assert header[-1] == "channel"
    assert len(rows) == 3
    assert all("10.0.0.2" not in value for row in rows for value in row)


def test_the_records_read_in_chinese(login, registry_admin, trail):
    response = login(registry_admin).get(CSV, {**MARCH, "action": "status_move"})

    header, *rows = csv_rows(response)
    assert header[:3] == ["时间", "操作人", "操作"]
    assert rows[0][2] == "状态变更"


def test_every_record_is_listed_on_the_page_of_an_admin(admin_page, trail):
    total = AuditRecord.objects.count()

    assert len(admin_page.get(PAGE).context["rows"]) == total
