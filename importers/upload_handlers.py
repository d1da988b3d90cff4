"""Django's spooling of large uploads to disk, saying so when the disk is full.

Uploads over ``FILE_UPLOAD_MAX_MEMORY_SIZE`` (2.5 MB) are written by Django to
``FILE_UPLOAD_TEMP_DIR`` (the system's temporary directory) before any view
runs. When that directory is full, Django's own handler lets ``OSError`` escape:
an error page, and part of the file left behind. This one removes what it
wrote and refuses the upload as ``NoRoom`` (507, in both languages).
"""

import contextlib

from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.utils.translation import gettext_lazy as _

from importers.errors import NO_ROOM, NoRoom


class RoomCheckedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """``TemporaryFileUploadHandler``, refusing cleanly on a full disk."""

    def new_file(self, *args, **kwargs) -> None:
        """Open the temporary file (refused when there is no room for it)."""
        try:
            super().new_file(*args, **kwargs)
        except OSError as error:
            self._refuse(error)

    def receive_data_chunk(self, raw_data, start):
        """Write one chunk (refused, and the file removed, on a full disk)."""
        try:
            return super().receive_data_chunk(raw_data, start)
        except OSError as error:
            self._refuse(error)

    def _refuse(self, error: OSError):
        spooled = getattr(self, "file", None)
        if spooled is not None:
            # A NamedTemporaryFile: closing it removes it.
            with contextlib.suppress(OSError):
                spooled.close()
        if error.errno in NO_ROOM:
            raise NoRoom(
                _(
                    "The server has no room left to receive %(file)s; nothing was "
                    "stored. Try again later or ask the administrator."
                ),
                file=self.file_name or "—",
            ) from error
        raise error
