"""Where uploads wait for their job: a private directory, never served back."""

import os
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _

from importers.errors import NO_ROOM, ImportRefused, NoRoom


def store(upload: UploadedFile) -> Path:
    """Save an uploaded file under a random name; return its path.

    The surveyor's file name is kept on the batch, never in the path, so no
    upload can choose where it lands. An upload over the size limit is refused
    before it is written.
    """
    limit = settings.IMPORT_LIMITS["upload_bytes"]
    if upload.size is not None and upload.size > limit:
        raise ImportRefused(
            _("%(file)s is %(size)s bytes; uploads may be at most %(limit)s bytes."),
            file=upload.name,
            size=f"{upload.size:,}",
            limit=f"{limit:,}",
        )
    directory = Path(settings.IMPORT_UPLOAD_DIR) / uuid.uuid4().hex
    try:
        directory.mkdir(parents=True, mode=0o700)
        path = directory / "upload.bin"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as sink:
            for chunk in upload.chunks():
                sink.write(chunk)
    except OSError as error:
        # No half-written upload stays behind (a full disk, say).
        shutil.rmtree(directory, ignore_errors=True)
        if error.errno in NO_ROOM:
            raise NoRoom(
                _(
                    "The server has no room left to keep %(file)s; nothing was "
                    "stored. Try again later or ask the administrator."
                ),
                file=upload.name,
            ) from error
        raise
    return path


def discard(path: str | Path) -> None:
    """Remove a stored upload and its directory (ignore if already gone)."""
    path = Path(path)
    root = Path(settings.IMPORT_UPLOAD_DIR).resolve()
    if path.resolve().parent.parent == root:
        shutil.rmtree(path.parent, ignore_errors=True)
