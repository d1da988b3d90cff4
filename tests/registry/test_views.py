"""The home page, as each persona and each language sees it."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from registry.selectors import project_area_summary
from registry.templatetags.humanize_area import km2
from tests.factories import PASSWORD, ParcelFactory, ProjectFactory

pytestmark = pytest.mark.django_db

READERS = ["planner", "analyst", "surveyor", "case_officer", "registry_admin"]


@pytest.fixture
def land(project, other_project):
    ParcelFactory(project=project, status="cleared", side=200)  # 0.040 km²
    ParcelFactory(project=project, status="banked", side=100)  # 0.010 km²
    ParcelFactory(project=project, status="signed", side=100)  # 0.010 km²
    ParcelFactory(project=other_project, status="cleared", side=200)  # 0.040 km²
    ParcelFactory(project=other_project, status="declared", side=100)  # 0.010 km²


def project_row(html: str, code: str) -> str:
    match = re.search(rf'<tr data-project="{re.escape(code)}">(.*?)</tr>', html, re.S)
    assert match, f"no row for project {code}"
    return match.group(1)


def cleared_cell(row: str) -> str:
    return re.search(r'<td class="num cleared">([^<]*)</td>', row).group(1)


@pytest.mark.parametrize("path", ["/", "/admin/", "/admin/registry/parcel/"])
def test_an_anonymous_visitor_is_sent_to_log_in(path):
    response = Client().get(path, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain, "the page itself is not shown"
    final = urlsplit(response.redirect_chain[-1][0])
    assert final.path == "/accounts/login/"
    assert parse_qs(final.query)["next"][0].startswith(path)
    assert 'name="password"' in response.content.decode()


def log_in_through_the_form(client, username, redirected_to_login):
    """Submit the login page the visitor was sent to, as a browser would."""
    next_url = parse_qs(urlsplit(redirected_to_login.redirect_chain[-1][0]).query)
    return client.post(
        "/accounts/login/",
        {"username": username, "password": PASSWORD, "next": next_url["next"][0]},
        follow=True,
    )


@pytest.mark.parametrize("path", ["/", "/admin/registry/parcel/"])
def test_after_logging_in_the_visitor_gets_the_page_they_asked_for(
    path, registry_admin
):
    client = Client()

    response = log_in_through_the_form(
        client, "registry_admin", client.get(path, follow=True)
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == path


def test_a_registry_admin_logging_in_from_the_admin_index_reaches_it(registry_admin):
    client = Client()

    response = log_in_through_the_form(
        client, "registry_admin", client.get("/admin/", follow=True)
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/admin/"


def test_the_login_page_is_open_to_anonymous_visitors():
    response = Client().get("/accounts/login/")

    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()


def test_a_visitor_logs_in_and_reaches_the_home_page(planner):
    client = Client()

    response = client.post(
        "/accounts/login/",
        {"username": "planner", "password": PASSWORD},
    )

    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_user_without_a_role_is_refused_the_home_page(login, outsider, land):
    response = login(outsider).get("/")

    assert response.status_code == 403
    html = response.content.decode()
    assert "Access denied" in html
    assert "GM-SC" not in html


@pytest.mark.parametrize("persona", READERS)
def test_every_role_sees_the_home_page(persona, request, login, land):
    response = login(request.getfixturevalue(persona)).get("/")

    assert response.status_code == 200


def test_the_home_page_shows_each_project_with_its_cleared_area(
    login, planner, land, project, other_project
):
    summary = project_area_summary()

    html = login(planner).get("/").content.decode()

    for p in (project, other_project):
        row = project_row(html, p.code)
        assert f'<a href="/projects/{p.code}/map">{p.code}</a>' in row
        assert cleared_cell(row) == km2(summary[p.pk][None].cleared_m2)
    assert cleared_cell(project_row(html, project.code)) == "0.050"
    assert cleared_cell(project_row(html, other_project.code)) == "0.040"
    assert "83.3%" in project_row(html, project.code)


def test_a_project_without_parcels_shows_zero(login, planner):
    ProjectFactory(code="ZZ-EMPTY")

    row = project_row(login(planner).get("/").content.decode(), "ZZ-EMPTY")

    assert cleared_cell(row) == "0.000"
    assert "0.0%" in row


def test_the_home_page_with_no_projects_says_so(login, planner):
    response = login(planner, language="en").get("/")

    assert "No projects yet." in response.content.decode()


def test_the_home_page_only_answers_reads(login, planner):
    assert login(planner).post("/").status_code == 405


def test_the_page_is_in_chinese_by_default(login, planner, project):
    html = login(planner).get("/").content.decode()

    assert '<html lang="zh-hans">' in html
    assert "土地整备项目" in html
    assert project.name_zh in html
    assert project.name_en not in html


def test_the_language_cookie_gives_an_english_page(login, planner, project):
    html = login(planner, language="en").get("/").content.decode()

    assert '<html lang="en">' in html
    assert "Consolidation projects" in html
    assert project.name_en in html
    assert project.name_zh not in html


def test_an_english_browser_alone_still_gets_chinese(login, planner, project):
    """Intranet PCs run English browsers for Chinese users (config/locale.py)."""
    client = login(planner, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    html = client.get("/").content.decode()

    assert '<html lang="zh-hans">' in html
    assert project.name_zh in html


def test_an_unknown_language_cookie_falls_back_to_chinese(login, planner):
    html = login(planner, language="fr").get("/").content.decode()

    assert '<html lang="zh-hans">' in html


def test_switching_the_language_sticks(login, planner, project):
    client = login(planner)

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    assert response.status_code == 302
    html = client.get("/").content.decode()
    assert '<html lang="en">' in html
    assert project.name_en in html


def test_synthetic_data_is_announced(login, planner):
    ProjectFactory(synthetic=True)

    html = login(planner, language="en").get("/").content.decode()

    assert "Synthetic demonstration data" in html


def test_real_data_carries_no_synthetic_banner(login, planner, land):
    html = login(planner, language="en").get("/").content.decode()

    assert "synthetic-banner" not in html
