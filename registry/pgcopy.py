"""Streaming rows into PostgreSQL with ``COPY … FROM STDIN``.

Bulk writers (imports, the demo loader) send thousands of rows at once; COPY is
several times faster than INSERT, and writing it in chunks keeps memory flat
whatever the number of rows. Rows given one by one are escaped for COPY's text
format, since codes and names come from untrusted files; columns given as an
Arrow table are written as CSV by Arrow's own writer (quoted, so that an empty
text stays empty and only a missing value is NULL), with no Python per value.
"""

import io
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.csv as pa_csv

NULL = "\\N"
CHUNK_ROWS = 10_000
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def text(value) -> str:
    """Return ``value`` as one COPY text field (None becomes NULL)."""
    if value is None:
        return NULL
    if isinstance(value, float):
        return repr(value)
    return str(value).translate(_ESCAPES)


def copy_rows(
    cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence]
) -> int:
    """COPY ``rows`` (sequences of values) into ``table``; return the row count.

    ``cursor`` is a Django cursor; its psycopg cursor does the COPY. ``table`` and
    ``columns`` are the caller's constants, never user input.
    """
    count, lines = 0, []
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.cursor.copy(statement) as copy:
        for row in rows:
            lines.append("\t".join(text(value) for value in row))
            count += 1
            if len(lines) >= CHUNK_ROWS:
                copy.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            copy.write("\n".join(lines) + "\n")
    return count


def copy_table(cursor, table: str, data: pa.Table) -> int:
    """COPY the Arrow table ``data`` into ``table`` (columns by name); return rows.

    ``cursor`` is a Django cursor; ``table`` and the column names are the
    caller's constants, never user input.
    """
    if data.num_rows == 0:
        return 0
    buffer = io.BytesIO()
    pa_csv.write_csv(
        data,
        buffer,
        pa_csv.WriteOptions(include_header=False, quoting_style="all_valid"),
    )
    statement = (
        f"COPY {table} ({', '.join(data.column_names)}) FROM STDIN WITH (FORMAT csv)"
    )
    with cursor.cursor.copy(statement) as copy:
        copy.write(buffer.getbuffer())
    return data.num_rows
