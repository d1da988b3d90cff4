"""A minimal dBASE (.dbf) reader: raw bytes per field, and honest record counts.

GDAL decodes shapefile text with whatever encoding it guesses and silently skips
records flagged deleted; a registry cannot afford either. This reader returns the
raw, undecoded bytes of every field of every record (numpy, no Python loop per
record), the deletion flags, the language-driver byte and both record counts,
the header's and the file's, so that the importer decides the encoding itself and
reports every record it will not import.
"""

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK_RECORDS = 65_536


@dataclass(frozen=True)
class DbfField:
    """One column of the table as declared in the header."""

    name: str
    kind: str  # C (text), N/F (number), D (date), L (logical), ...
    length: int
    decimals: int


@dataclass
class DbfTable:
    """The table's header facts and its raw values, one bytes array per field."""

    fields: list[DbfField]
    header_count: int
    file_count: int
    language_driver: int
    deleted: np.ndarray  # bool per record
    raw: dict[str, np.ndarray]  # field name -> bytes per record (rstripped)
    raw_names: dict[str, bytes]  # field name -> the name's undecoded bytes


class DbfError(ValueError):
    """The file is not a readable dBASE table."""


def read_dbf(path: Path, *, name_encoding: str = "gb18030") -> DbfTable:
    """Read the table at ``path``. Field names are decoded with ``name_encoding``.

    The records are read a chunk at a time and each field is kept at the width of
    its longest value, not its declared one: a million records of three
    80-character text fields are 240 MB on disk and a few tens in memory.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(32)
        if len(head) < 32:
            raise DbfError("shorter than a dBASE header")
        version = head[0]
        if version & 0x07 not in (2, 3, 4, 5):
            raise DbfError(f"version byte 0x{version:02x} is not dBASE")
        header_count, header_length, record_length = struct.unpack("<IHH", head[4:12])
        if header_length > size or header_length < 33:
            raise DbfError("the header is cut short")
        header = head + handle.read(header_length - 32)
        fields, raw_names = _descriptors(header, header_length, name_encoding)
        if not fields or record_length < 1:
            raise DbfError("no field descriptors")
        if sum(f.length for f in fields) + 1 != record_length:
            raise DbfError("field lengths do not add up to the record length")
        if any(not f.name for f in fields) or len({f.name for f in fields}) != len(
            fields
        ):
            raise DbfError("a field has no name, or two fields have the same name")
        file_count = (size - header_length) // record_length
        layout = np.dtype(
            # The flag's name cannot be a field's: field names never hold a NUL.
            [("\x00deleted", "S1")] + [(f.name, f"S{f.length}") for f in fields]
        )
        deleted, chunks = [], {f.name: [] for f in fields}
        for start in range(0, file_count, CHUNK_RECORDS):
            count = min(CHUNK_RECORDS, file_count - start)
            records = np.frombuffer(
                handle.read(count * record_length), dtype=layout, count=count
            )
            deleted.append(records["\x00deleted"] == b"*")
            for f in fields:
                # numpy's S dtype drops trailing NULs; dBASE pads with spaces.
                chunks[f.name].append(_narrowed(np.char.rstrip(records[f.name], b" ")))
    raw = {f.name: _joined(chunks.pop(f.name), f.length) for f in fields}
    return DbfTable(
        fields,
        header_count,
        file_count,
        header[29],
        np.concatenate(deleted) if deleted else np.zeros(0, dtype=bool),
        raw,
        raw_names,
    )


def _descriptors(header: bytes, header_length: int, name_encoding: str):
    fields, raw_names, offset = [], {}, 32
    while offset + 32 <= header_length and header[offset] != 0x0D:
        descriptor = header[offset : offset + 32]
        raw_name = descriptor[:11].split(b"\x00", 1)[0]
        name = raw_name.decode(name_encoding, errors="replace").strip()
        field = DbfField(name, chr(descriptor[11]), descriptor[16], descriptor[17])
        fields.append(field)
        raw_names[name] = raw_name
        offset += 32
    return fields, raw_names


def _narrowed(values: np.ndarray) -> np.ndarray:
    """Return ``values`` as bytes no wider than the longest of them."""
    width = int(np.char.str_len(values).max()) if len(values) else 0
    return values.astype(f"S{max(width, 1)}")


def _joined(chunks: list[np.ndarray], declared: int) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype=f"S{max(declared, 1)}")
    # numpy widens every chunk to the widest one.
    return np.concatenate(chunks)


def shx_record_count(path: Path) -> int:
    """Return how many shapes the .shx index lists (from its file length)."""
    header = path.read_bytes()[:100]
    if len(header) < 100 or struct.unpack(">i", header[:4])[0] != 9994:
        raise DbfError("not a shapefile index")
    length_words = struct.unpack(">i", header[24:28])[0]
    return (length_words * 2 - 100) // 8
