"""The upload directory, or the importer's temporary directory, full.

A real full file system, not a mock: a 256 KiB tmpfs is mounted for the test
(this needs CAP_SYS_ADMIN, i.e. root in the development container; the tests are
skipped, saying so, where mounting is not allowed) and the upload directory or
the temporary directory put on it. The surveyor must be told, in both
languages, that the server has no room; nothing may be left behind.
"""

import os
import subprocess
import tempfile
import zipfile
from pathlib import Path

import pytest
from django.test import Client
from procrastinate.contrib.django.models import ProcrastinateJob
from rest_framework.authtoken.models import Token

from importers.models import ImportBatch
from registry.models import Parcel
from tests.importers import corpus
from tests.importers.helpers import DATABASES, run_import

pytestmark = pytest.mark.django_db(databases=DATABASES)

TMPFS_SIZE = "256k"


@pytest.fixture
def full_disk(tmp_path):
    """Return a directory on a tmpfs of 256 KiB (unmounted afterwards)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "tmpfs",
         str(mount_point)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def incompressible_zip(directory: Path, size: int) -> Path:
    """Return a zip holding ``size`` random bytes (stored: it cannot shrink)."""
    path = directory / "big.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("big/parcels.shp", os.urandom(size))
    return path


@pytest.mark.parametrize(
    ("setting", "size", "zh", "en"),
    [
        # Under 2.5 MB the upload reaches the view, which keeps it in the
        # upload directory.
        (
            "IMPORT_UPLOAD_DIR",
            600_000,
            "服务器磁盘空间不足，无法保存 big.zip；未保存任何内容。"
            "请稍后重试或联系管理员。",
            "The server has no room left to keep big.zip; nothing was stored. "
            "Try again later or ask the administrator.",
        ),
        # Over 2.5 MB, Django itself writes the upload to FILE_UPLOAD_TEMP_DIR
        # before the view runs.
        (
            "FILE_UPLOAD_TEMP_DIR",
            3_000_000,
            "服务器磁盘空间不足，无法接收 big.zip；未保存任何内容。"
            "请稍后重试或联系管理员。",
            "The server has no room left to receive big.zip; nothing was "
            "stored. Try again later or ask the administrator.",
        ),
    ],
    ids=["upload directory", "spooled to the temporary directory"],
)
def test_an_api_upload_onto_a_full_disk_is_refused_and_leaves_nothing(
    settings, project, surveyor, full_disk, tmp_path, setting, size, zh, en
):
    setattr(settings, setting, str(full_disk))
    upload = incompressible_zip(tmp_path, size)
    token, _ = Token.objects.get_or_create(user=surveyor)

    with open(upload, "rb") as handle:
        response = Client(HTTP_AUTHORIZATION=f"Token {token.key}").post(
            "/api/imports/", {"file": handle, "project": "GM-SC"}
        )

    assert response.status_code == 507
    assert response.json()["error"] == {"zh": zh, "en": en}
    assert list(full_disk.iterdir()) == []
    assert not ImportBatch.objects.exists()
    assert not ProcrastinateJob.objects.filter(task_name="importers.run_batch").exists()


def test_a_full_temporary_directory_refuses_the_batch_with_the_reason(
    monkeypatch, project, surveyor, full_disk, tmp_path
):
    monkeypatch.setattr(tempfile, "tempdir", str(full_disk))
    # The corpus, with a member big enough not to fit once unpacked.
    upload = corpus.shapefile_zip(tmp_path, name="parcels")
    with zipfile.ZipFile(upload, "a", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("notes.bin", os.urandom(400_000))

    batch = run_import(upload, project=project, actor=surveyor, commit=True)

    assert batch.state == "refused"
    assert batch.report["refusal"] == {
        "zh": "服务器临时目录空间不足，无法解包 parcels.zip；未写入任何数据。"
        "请稍后重试或联系管理员。",
        "en": "The server's temporary space ran out while unpacking parcels.zip; "
        "nothing was written. Try again later or ask the administrator.",
    }
    assert not Parcel.objects.exists()
    assert list(full_disk.iterdir()) == []


def test_a_large_upload_on_the_page_into_a_full_temporary_directory_is_refused(
    settings, client, project, surveyor, full_disk, tmp_path
):
    # The page's CSRF check reads the body before the view: the refusal must
    # still be a page saying why, not an error page.
    settings.FILE_UPLOAD_TEMP_DIR = str(full_disk)
    upload = incompressible_zip(tmp_path, 3_000_000)
    client.force_login(surveyor)

    with open(upload, "rb") as handle:
        response = client.post(
            "/imports/new/",
            {"file": handle, "project": project.pk, "layer": "parcels"},
        )

    assert response.status_code == 507
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "服务器磁盘空间不足，无法接收 big.zip；未保存任何内容。" in page
    assert "The server has no room left to receive big.zip; nothing was stored." in page
    assert list(full_disk.iterdir()) == []
    assert not ImportBatch.objects.exists()
