"""CSV in and out the way spreadsheets in schools expect (the Kolibri conventions).

Files are UTF-8 with a byte-order mark (`utf-8-sig`), so Excel opens accented names correctly,
and every text cell that a spreadsheet would take for a formula (starting with = + - @, or a tab
or carriage return) is prefixed with an apostrophe, so a crafted name cannot run a formula on
the teacher's machine. Reading accepts the comma, semicolon or tab delimiters that spreadsheets
write in different locales.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from appliance.errors import Invalid

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
DELIMITERS = ",;\t"


def escape_cell(value: object) -> str:
    """A cell value safe to open in a spreadsheet (numbers stay numbers)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([escape_cell(name) for name in header])
    for row in rows:
        writer.writerow([escape_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8-sig")


def read_csv(data: bytes, *, max_rows: int) -> list[dict[str, str]]:
    """Rows of a CSV file with a header row, keyed by lower-cased, trimmed column names."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(
            "invalid_encoding",
            f"the file is not UTF-8 text (byte {exc.start}); in your spreadsheet, save it as 'CSV UTF-8'",
        ) from exc
    if not text.strip():
        raise Invalid(
            "empty_file", "the file is empty; it needs a header row such as 'username' and one row per student"
        )
    first_line = text.splitlines()[0]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(first_line, delimiters=DELIMITERS)
    except csv.Error:
        dialect = csv.excel  # a single column has no delimiter to find
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [name.strip().lower() for name in next(reader)]
        rows: list[dict[str, str]] = []
        for line in reader:
            if not any(cell.strip() for cell in line):
                continue  # blank lines, often left at the end by spreadsheets
            if len(rows) >= max_rows:
                raise Invalid("too_many_rows", f"the file has more than {max_rows} rows; split it into smaller files")
            rows.append({name: (line[i].strip() if i < len(line) else "") for i, name in enumerate(header)})
    except csv.Error as exc:
        raise Invalid("invalid_csv", f"the file is not valid CSV: {exc}") from exc
    return rows
