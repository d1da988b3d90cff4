"""Unpacking uploads safely: size and entry limits, no path tricks, no links.

Uploads are untrusted. A zip is never extracted with ``extractall``: its entry
count is read from the end record before the central directory is parsed (a
directory of millions of entries would fill memory on parsing alone); every
entry is checked (no absolute paths, no ``..``, no backslashes, no symlinks, no
archive inside the archive, no encryption, only compression methods we unpack,
no two entries sharing their bytes); the declared sizes and compression ratios,
per entry and over the whole archive, are checked before anything is written;
and the bytes actually written are counted again while streaming, because
headers can lie. Everything goes into a private temporary directory that the
caller removes; nothing is ever written next to the upload.
"""

import itertools
import lzma
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, fields
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from importers.errors import NO_ROOM, ImportRefused, NoRoom

CHUNK = 1 << 20
WHOLE_RATIO_FROM = 64 * CHUNK
# The most central-directory bytes one entry may take (46 fixed bytes, a name,
# extra fields and a comment); a bigger directory hides more entries than the
# end record admits.
DIRECTORY_BYTES_PER_ENTRY = 1024
# Compression methods ``zipfile`` unpacks; others (Deflate64, PPMd, AES) would
# fail half-way.
METHODS = {
    zipfile.ZIP_STORED: "Stored",
    zipfile.ZIP_DEFLATED: "Deflate",
    zipfile.ZIP_BZIP2: "BZIP2",
    zipfile.ZIP_LZMA: "LZMA",
}
# Archives GDAL could look into (``/vsizip/``, ``/vsitar/``...) or a surveyor
# meant to be unpacked: never unpacked here, so a zip of zips cannot multiply.
ARCHIVE_SUFFIXES = (".zip", ".7z", ".rar", ".tar", ".tgz", ".gz", ".kmz")


@dataclass(frozen=True)
class Limits:
    """How much an upload may hold, before and after decompression."""

    upload_bytes: int
    unpacked_bytes: int
    entries: int
    ratio: int

    @classmethod
    def from_settings(cls) -> "Limits":
        """Return the limits configured in settings (see config/settings.py).

        ``IMPORT_LIMITS`` may hold limits of later stages too; only the archive's
        are taken.
        """
        return cls(**{f.name: settings.IMPORT_LIMITS[f.name] for f in fields(cls)})


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
        try:
            shutil.copyfile(upload, target / safe_name)
        except OSError as error:
            _refuse_if_no_room(error, name)
            raise
        return target
    if not zipfile.is_zipfile(upload):
        raise ImportRefused(_("%(file)s is not a valid zip archive."), file=name)
    _check_directory(upload, name=name, limits=limits)
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
    except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, OSError, EOFError) as error:
        _refuse_if_no_room(error, name)
        raise ImportRefused(
            _("%(file)s is a damaged zip archive: %(error)s"),
            file=name,
            error=str(error)[:200],
        ) from error
    return target


def _too_many(name: str, count: int, limits: Limits) -> ImportRefused:
    return ImportRefused(
        _("%(file)s holds %(count)s entries; at most %(limit)s are allowed."),
        file=name,
        count=f"{count:,}",
        limit=f"{limits.entries:,}",
    )


def _check_directory(upload: Path, *, name: str, limits: Limits) -> None:
    """Refuse too many entries from the end record, before parsing any of them."""
    with open(upload, "rb") as handle:
        # The end record (zip64 included) as zipfile itself finds it; private,
        # but the module's own parser, unchanged for decades.
        end = zipfile._EndRecData(handle)
    if end is None:
        raise ImportRefused(_("%(file)s is not a valid zip archive."), file=name)
    count, directory_bytes = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]
    if count > limits.entries:
        raise _too_many(name, count, limits)
    if directory_bytes > max(count, 1) * DIRECTORY_BYTES_PER_ENTRY:
        raise ImportRefused(
            _(
                "%(file)s: its directory of %(size)s bytes does not fit the "
                "%(count)s entries it announces; refused."
            ),
            file=name,
            size=f"{directory_bytes:,}",
            count=f"{count:,}",
        )


def _refuse_if_no_room(error: BaseException, name: str) -> None:
    """Raise ``NoRoom`` when ``error`` says the temporary space is full.

    The file is not to blame then: calling it damaged would send the surveyor
    looking for a fault that is not there.
    """
    if isinstance(error, OSError) and error.errno in NO_ROOM:
        raise NoRoom(
            _(
                "The server's temporary space ran out while unpacking %(file)s; "
                "nothing was written. Try again later or ask the administrator."
            ),
            file=name,
        ) from error


def _check_entries(
    entries: list[zipfile.ZipInfo], *, name: str, limits: Limits
) -> None:
    if len(entries) > limits.entries:
        raise _too_many(name, len(entries), limits)
    declared, compressed, files, folders = 0, 0, set(), set()
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
        if entry.is_dir():
            continue
        if member.lower().endswith(ARCHIVE_SUFFIXES):
            raise ImportRefused(
                _(
                    "%(file)s contains another archive “%(entry)s”; unpack it and "
                    "upload the survey files themselves."
                ),
                file=name,
                entry=member,
            )
        if entry.flag_bits & 0x1:
            raise ImportRefused(
                _(
                    "%(file)s: “%(entry)s” is encrypted; upload the archive "
                    "without a password."
                ),
                file=name,
                entry=member,
            )
        if entry.compress_type not in METHODS:
            raise ImportRefused(
                _(
                    "%(file)s: “%(entry)s” is compressed with method %(method)s, "
                    "which cannot be unpacked here; zip it again with the usual "
                    "Deflate method."
                ),
                file=name,
                entry=member,
                method=entry.compress_type,
            )
        declared += entry.file_size
        compressed += entry.compress_size
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
    # Many small entries, each below the per-entry check, can still multiply
    # the upload: an archive unpacking to more than a little is held as a whole
    # to the same ratio.
    if declared > WHOLE_RATIO_FROM and declared > limits.ratio * max(compressed, 1):
        raise ImportRefused(
            _(
                "%(file)s expands %(ratio)s times as a whole; at most %(limit)s "
                "is allowed (a zip bomb?)."
            ),
            file=name,
            ratio=declared // max(compressed, 1),
            limit=limits.ratio,
        )
    _check_overlaps(entries, name=name)


def _check_overlaps(entries: list[zipfile.ZipInfo], *, name: str) -> None:
    """Refuse entries whose stored bytes overlap another's (a "better zip bomb").

    Each entry's data starts after its local header (30 bytes and its name at
    least), and must end before the next entry's header begins.
    """
    stored = sorted(
        (
            e.header_offset,
            e.header_offset + 30 + _name_bytes(e) + e.compress_size,
            e.filename,
        )
        for e in entries
        if not e.is_dir()
    )
    for (_start, end, member), (next_start, _end, _next) in itertools.pairwise(stored):
        if end > next_start:
            raise ImportRefused(
                _(
                    "%(file)s: the stored bytes of “%(entry)s” overlap another "
                    "entry's (a zip bomb?); refused."
                ),
                file=name,
                entry=member,
            )


def _name_bytes(entry: zipfile.ZipInfo) -> int:
    """Return the length of the entry's name as stored (UTF-8 or code page 437)."""
    codec = "utf-8" if entry.flag_bits & 0x800 else "cp437"
    return len(entry.orig_filename.encode(codec))


def _too_big(name: str, limits: Limits) -> ImportRefused:
    return ImportRefused(
        _("%(file)s unpacks to more than %(limit)s bytes; refused."),
        file=name,
        limit=f"{limits.unpacked_bytes:,}",
    )
