"""Language: Chinese first, English on request, and every string translated."""

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(settings.BASE_DIR)
SOURCES = ["config", "registry", "spatial", "importers", "tilesvc", "fixtures"]


def test_every_translatable_string_in_the_code_has_a_chinese_translation(tmp_path):
    # Extract afresh from a copy of the sources, so that a string added to the
    # code but not to the catalogue fails here, not in front of an official.
    for name in SOURCES:
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "makemessages",
            "-l",
            "zh_Hans",
            "--no-obsolete",
            "-v",
            "0",
        ],
        cwd=tmp_path,
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
    )
    catalogue = polib.pofile(tmp_path / "locale/zh_Hans/LC_MESSAGES/django.po")
    missing = [e.msgid for e in catalogue.untranslated_entries()]
    fuzzy = [e.msgid for e in catalogue.fuzzy_entries()]
    assert (missing, fuzzy) == ([], [])
    assert len(catalogue) > 100


@pytest.mark.django_db
def test_pages_are_chinese_by_default_even_for_an_english_browser(client, planner):
    client.force_login(planner)
    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    assert page.status_code == 200
    assert '<html lang="zh-hans">' in page.text
    assert "土地整备项目" in page.text


@pytest.mark.django_db
def test_choosing_english_in_the_switcher_gives_english_pages(client, planner):
    client.force_login(planner)
    switched = client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert switched.status_code == 302
    page = client.get(reverse("home"))
    assert '<html lang="en">' in page.text
    assert "Consolidation projects" in page.text


@pytest.mark.django_db
def test_the_login_page_can_switch_language_before_logging_in(client):
    switched = client.post(
        reverse("set_language"), {"language": "en", "next": "/accounts/login/"}
    )
    assert switched.status_code == 302
    assert "Log in" in client.get(reverse("login")).text


def test_the_time_zone_is_shanghai():
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.USE_TZ
