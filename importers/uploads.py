"""Where uploads wait for their job: a private directory, never served back."""

import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile


def store(upload: UploadedFile) -> Path:
    """Save an uploaded file under a random name; return its path.

    The surveyor's file name is kept on the batch, never in the path, so no
    upload can choose where it lands.
    """
    directory = Path(settings.IMPORT_UPLOAD_DIR) / uuid.uuid4().hex
    directory.mkdir(parents=True, mode=0o700)
    path = directory / "upload.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as sink:
        for chunk in upload.chunks():
            sink.write(chunk)
    return path


def discard(path: str | Path) -> None:
    """Remove a stored upload and its directory (ignore if already gone)."""
    path = Path(path)
    root = Path(settings.IMPORT_UPLOAD_DIR).resolve()
    if path.resolve().parent.parent == root:
        shutil.rmtree(path.parent, ignore_errors=True)
