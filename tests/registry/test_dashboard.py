"""The dashboard's access rules and its CSV download."""

import pytest

from registry.workflow import Status
from tests.factories import ParcelFactory, parcel_square

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("persona", "status"),
    [("planner", 200), ("analyst", 200), ("registry_admin", 200), ("outsider", 403)],
)
def test_who_sees_the_dashboard(persona, status, request, login):
    client = login(request.getfixturevalue(persona))
    assert client.get("/dashboard/").status_code == status
    assert client.get("/dashboard/progress.csv").status_code == status


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_table_downloads_as_csv_that_excel_reads_as_utf8(project, analyst, login):
    ParcelFactory(
        project=project, status=Status.CLEARED, geom=parcel_square(project, 0, 100)
    )
    response = login(analyst).get("/dashboard/progress.csv")
    assert response.content.startswith("\ufeff".encode())
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("编号,项目")
    [row] = [line for line in lines[1:] if line.startswith(project.code)]
    assert project.name_zh in row
    assert row.split(",")[4] == "0.0100"  # cleared km²


def test_changing_state_on_the_dashboard_is_not_possible(planner, login):
    assert login(planner).post("/dashboard/").status_code == 405
