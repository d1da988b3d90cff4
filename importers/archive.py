"""Unpacking uploads safely: size and entry limits, no path tricks, no links.

Uploads are untrusted. A zip is never extracted with ``extractall``: every entry
is checked (no absolute paths, no ``..``, no backslashes, no symlinks), the
declared sizes and compression ratio are checked before anything is written, and
the bytes actually written are counted again while streaming, because headers
can lie. Everything goes into a private temporary directory that the caller
removes; nothing is ever written next to the upload.
"""

import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from importers.errors import ImportRefused

CHUNK = 1 << 20


@dataclass(frozen=True)
class Limits:
    """How much an upload may hold, before and after decompression."""

    upload_bytes: int
    unpacked_bytes: int
    entries: int
    ratio: int

    @classmethod
    def from_settings(cls) -> "Limits":
        """Return the limits configured in settings (see config/settings.py)."""
        return cls(**settings.IMPORT_LIMITS)


def unpack(upload: Path, into: Path, *, name: str, limits: Limits) -> Path:
    """Copy or extract the upload ``name`` into the directory ``into``.

    Return the directory holding the files. Raise ``ImportRefused`` when the
    upload breaks a limit or contains a dangerous entry; ``into`` may then hold
    partial output, which the caller's temporary directory removes.
    """
    try:
        size = upload.stat().st_size
    except FileNotFoundError as error:
        raise ImportRefused(
            _("The uploaded file %(file)s is no longer available; upload it again."),
            file=name,
        ) from error
    if size > limits.upload_bytes:
        raise ImportRefused(
            _("%(file)s is %(size)s bytes; uploads may be at most %(limit)s bytes."),
            file=name,
            size=f"{size:,}",
            limit=f"{limits.upload_bytes:,}",
        )
    if size == 0:
        raise ImportRefused(_("%(file)s is empty."), file=name)
    target = into / "data"
    target.mkdir()
    if not name.lower().endswith(".zip"):
        safe_name = PurePosixPath(name.replace("\\", "/")).name or "upload"
        shutil.copyfile(upload, target / safe_name)
        return target
    if not zipfile.is_zipfile(upload):
        raise ImportRefused(_("%(file)s is not a valid zip archive."), file=name)
    try:
        with zipfile.ZipFile(upload) as archive:
            entries = archive.infolist()
            _check_entries(entries, name=name, limits=limits)
            written = 0
            for entry in entries:
                if entry.is_dir():
                    continue
                destination = target.joinpath(*PurePosixPath(entry.filename).parts)
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as source, open(destination, "xb") as sink:
                    while chunk := source.read(CHUNK):
                        written += len(chunk)
                        if written > limits.unpacked_bytes:
                            raise _too_big(name, limits)
                        sink.write(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
        raise ImportRefused(
            _("%(file)s is a damaged zip archive: %(error)s"),
            file=name,
            error=str(error)[:200],
        ) from error
    return target


def _check_entries(
    entries: list[zipfile.ZipInfo], *, name: str, limits: Limits
) -> None:
    if len(entries) > limits.entries:
        raise ImportRefused(
            _("%(file)s holds %(count)s entries; at most %(limit)s are allowed."),
            file=name,
            count=f"{len(entries):,}",
            limit=f"{limits.entries:,}",
        )
    declared, files, folders = 0, set(), set()
    for entry in entries:
        member = entry.filename
        # One destination per entry (compared without letter case, as the
        # shapefile sets are): a repeated name, or a file where a folder must
        # go, would let one entry overwrite or shadow another.
        key = PurePosixPath(member.rstrip("/").lower())
        parents = {str(parent) for parent in key.parents if str(parent) != "."}
        if entry.is_dir():
            conflict = str(key) in files
            folders.add(str(key))
        else:
            conflict = str(key) in files or str(key) in folders
            files.add(str(key))
        folders |= parents
        if conflict or parents & files:
            raise ImportRefused(
                _("%(file)s contains “%(entry)s” more than once; refused."),
                file=name,
                entry=member,
            )
        parts = PurePosixPath(member).parts
        if (
            "\\" in member
            or member.startswith("/")
            or (len(member) > 1 and member[1] == ":")
            or ".." in parts
        ):
            raise ImportRefused(
                _("%(file)s contains the unsafe path “%(entry)s”; refused."),
                file=name,
                entry=member,
            )
        mode = entry.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ImportRefused(
                _("%(file)s contains a symbolic link “%(entry)s”; refused."),
                file=name,
                entry=member,
            )
        declared += entry.file_size
        if entry.file_size > CHUNK and entry.file_size > limits.ratio * max(
            entry.compress_size, 1
        ):
            raise ImportRefused(
                _(
                    "%(file)s: “%(entry)s” expands %(ratio)s times; at most "
                    "%(limit)s is allowed (a zip bomb?)."
                ),
                file=name,
                entry=member,
                ratio=entry.file_size // max(entry.compress_size, 1),
                limit=limits.ratio,
            )
    if declared > limits.unpacked_bytes:
        raise _too_big(name, limits)


def _too_big(name: str, limits: Limits) -> ImportRefused:
    return ImportRefused(
        _("%(file)s unpacks to more than %(limit)s bytes; refused."),
        file=name,
        limit=f"{limits.unpacked_bytes:,}",
    )
