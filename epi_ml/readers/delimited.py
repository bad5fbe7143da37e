"""Delimited text tables: separator sniffing, fields per line, numbers per field.

Fast path: when the body holds exactly one separator fewer than fields on every line (one count
of the bytes), polars' CSV parser reads it with every field as a string (no type guessing, so a bad
value cannot abort the read), and row i is line `first_line + i`. Otherwise (a line with too many or
too few fields, a blank line, quoted separators), or if the parser refuses the body or its row count
does not match the line count, the slow path splits the lines itself to find the bad ones.
Either way the result is the same: a frame of string fields with the 1-based line of each row, and
a problems frame (epi_ml.readers.lines) for the lines that do not have the right fields.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from epi_ml.readers.lines import PROBLEM_SCHEMA, combine, no_problems, problems
from epi_ml.readers.source import SourceText

SEPARATORS = (",", ";", "\t")
SEPARATOR_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", " ": "blanks"}
STRIP = " \t\"'"


@dataclass
class Fields:
    rows: pl.DataFrame  # "line" (UInt32, 1-based) + one String column per field name
    problems: pl.DataFrame  # epi_ml.readers.lines.PROBLEM_SCHEMA


def sniff_separator(lines: Sequence[str], *, preferred: str = ",") -> str:
    """The separator that splits the sample lines into the same number (>1) of fields most often;
    `preferred` wins ties (a one-column file has none at all)."""
    lines = [line for line in lines if line.strip()]
    best, best_score = preferred, 0
    for sep in (preferred, *[s for s in SEPARATORS if s != preferred]):
        counts = [line.count(sep) for line in lines]
        if not counts or max(counts) == 0:
            continue
        typical = max(set(counts), key=counts.count)
        score = counts.count(typical) if typical > 0 else 0
        if score > best_score:
            best, best_score = sep, score
    return best


def split_header(line: str, separator: str) -> list[str]:
    """Column names of a header line, stripped of blanks, quotes and EPIC's leading apostrophe."""
    try:
        names = next(csv.reader([line], delimiter=separator))
    except (csv.Error, StopIteration):  # e.g. a field over csv's size limit: no quoting then
        names = line.split(separator)
    return [name.strip(STRIP) for name in names]


def unique_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Names made unique (`x`, `x_2`) and empty ones named `column_<i>`; also the repeated ones."""
    out: list[str] = []
    repeated = []
    for i, name in enumerate(names, start=1):
        name = name or f"column_{i}"
        if name in out:
            repeated.append(name)
            k = 2
            while f"{name}_{k}" in out:
                k += 1
            name = f"{name}_{k}"
        out.append(name)
    return out, repeated


def split_fields(
    source: SourceText,
    *,
    first_line: int,
    names: Sequence[str],
    separator: str = ",",
    quoted: bool = False,
) -> Fields:
    """The fields of every line from `first_line` on (blank lines are skipped silently).
    `quoted`: honour "..." quoting (CSV from spreadsheets); EPIC logs have none."""
    body = source.body_bytes(first_line)
    schema = {name: pl.String for name in names}
    expected_rows = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
    # Every line with exactly the right number of separators is what the fast path can trust:
    # polars would fill a short line with nulls without saying so.
    regular = body.count(separator.encode()) == (len(names) - 1) * expected_rows
    rows = None
    if body and separator != " " and regular:
        try:
            rows = pl.read_csv(
                body,
                has_header=False,
                separator=separator,
                quote_char='"' if quoted else None,
                schema=schema,
            )
        except (pl.exceptions.PolarsError, ValueError):
            rows = None  # the slow path finds the line that made the parser give up
    if rows is not None and rows.height == expected_rows:
        rows = rows.with_row_index("line", offset=first_line)
        return Fields(_drop_blank(rows, names), no_problems())
    return _split_slowly(
        source, first_line=first_line, names=names, separator=separator, quoted=quoted
    )


def _drop_blank(rows: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """Blank lines come back as rows without fields (or one of blanks): drop them."""
    rest = [pl.col(n).is_null() for n in names[1:]]
    empty_rest = pl.all_horizontal(rest) if rest else pl.lit(True)
    candidates = rows.filter(empty_rest)
    if candidates.is_empty():
        return rows
    first = pl.col(names[0])
    blank = candidates.filter(first.is_null() | (first.str.strip_chars().str.len_bytes() == 0))
    if blank.is_empty():
        return rows
    return rows.join(blank.select("line"), on="line", how="anti", maintain_order="left")


def _split_slowly(
    source: SourceText, *, first_line: int, names: Sequence[str], separator: str, quoted: bool
) -> Fields:
    """Every line on its own: the ones with the right number of fields become rows, the others
    problems. Vectorised (polars string ops) unless fields may be quoted."""
    lines = body_lines(source, first_line)
    width = len(names)
    if quoted:
        parts = pl.Series(
            [_split_quoted(t, separator) for t in lines.get_column("text")],
            dtype=pl.List(pl.String),
        )
    elif separator == " ":
        parts = lines.get_column("text").str.extract_all(r"\S+")
    else:
        parts = lines.get_column("text").str.split(separator)
    lines = lines.with_columns(_parts=parts, _count=parts.list.len())
    good = lines.filter(pl.col("_count") == width)
    rows = good.select(
        pl.col("line").cast(pl.UInt32),
        *(pl.col("_parts").list.get(i).alias(name) for i, name in enumerate(names)),
    )
    bad = lines.filter(pl.col("_count") != width)
    if bad.is_empty():
        return Fields(rows, no_problems())
    reasons = [
        _field_count_reason(count, width, separator, text)
        for count, text in zip(bad.get_column("_count"), bad.get_column("text"), strict=True)
    ]
    return Fields(
        rows,
        problems(
            bad.get_column("line"), pl.Series(reasons, dtype=pl.String), bad.get_column("text")
        ),
    )


def _split_quoted(line: str, separator: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=separator))
    except (csv.Error, StopIteration):
        return line.split(separator)


def _field_count_reason(found: int, width: int, separator: str, line: str) -> str:
    if found == 1 and width > 1:
        others = [s for s in SEPARATORS if s != separator and s in line]
        if others:
            return (
                f"no {SEPARATOR_NAMES[separator]} between the fields "
                f"(the line uses {SEPARATOR_NAMES[others[0]]}s)"
            )
        return f"one field, expected {width} separated by {SEPARATOR_NAMES[separator]}s"
    return f"{found} fields, expected {width} separated by {SEPARATOR_NAMES[separator]}s"


def split_whitespace(source: SourceText, *, first_line: int, names: Sequence[str]) -> Fields:
    """Fields separated by runs of blanks (fixed-width instrument exports)."""
    return _split_slowly(source, first_line=first_line, names=names, separator=" ", quoted=False)


def to_float(
    rows: pl.DataFrame,
    column: str,
    *,
    what: str,
    decimal_comma: bool = False,
    required: bool = False,
) -> tuple[pl.Series, pl.DataFrame]:
    """A string column as Float64 (NaN and inf are numbers, and kept), and the problems of the
    fields that are not numbers (and, if `required`, of the empty ones). Only failed fields are
    looked at again: stripped of blanks and quotes, and with a decimal comma if `decimal_comma`."""
    texts = rows.get_column(column)
    values = texts.cast(pl.Float64, strict=False)
    if values.null_count() == 0 or texts.dtype != pl.String:  # typed input: nulls are empty cells
        return values, no_problems()
    at = values.is_null().arg_true()
    retried = texts.gather(at).str.strip_chars(STRIP)
    if decimal_comma:
        retried = retried.str.replace(",", ".", literal=True)
    values = values.scatter(at, retried.cast(pl.Float64, strict=False))
    failed = (
        rows.select("line", column).with_columns(_number=values).filter(pl.col("_number").is_null())
    )
    empty = pl.col(column).is_null() | (pl.col(column).str.strip_chars().str.len_bytes() == 0)
    reason = pl.when(~empty).then(pl.lit(f"{what} is not a number"))
    if required:
        reason = reason.when(empty).then(pl.lit(f"no {what}"))
    found = failed.select(
        "line",
        reason.otherwise(pl.lit(None, dtype=pl.String)).alias("reason"),
        pl.col(column).alias("text"),
    ).filter(pl.col("reason").is_not_null())
    return values, found.cast(PROBLEM_SCHEMA)  # type: ignore[arg-type]


def missing(rows: pl.DataFrame, column: str, *, what: str, separator: str = ",") -> pl.DataFrame:
    """Problems for rows where a required field is empty (the line is shown re-joined)."""
    texts = pl.col(column)
    empty = texts.is_null() | (texts.str.strip_chars().str.len_bytes() == 0)
    return (
        rows.filter(empty)
        .select(
            "line",
            pl.lit(f"no {what}").alias("reason"),
            pl.concat_str(pl.exclude("line"), separator=separator, ignore_nulls=True).alias("text"),
        )
        .cast(PROBLEM_SCHEMA)
    )  # type: ignore[arg-type]


def decimal_comma_used(rows: pl.DataFrame, columns: Sequence[str], separator: str) -> bool:
    """A file separated by ';' or tabs whose numbers hold a comma and no point (`300,5`)."""
    if separator == "," or not columns:
        return False
    sample = rows.head(200)
    return any(
        sample.get_column(c).str.contains(r"^\s*-?\d+,\d+([eE][-+]?\d+)?\s*$").any()
        for c in columns
    )


def cells_to_long(
    rows: pl.DataFrame,
    times: pl.Series,
    channels: dict[str, str],
    *,
    decimal_comma: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Wide rows (one column per channel) -> long samples (line, time, channel, value).
    `channels`: column -> channel. Empty cells are no sample; a cell that is not a number is a
    problem of its line, and only that cell is lost."""
    found = []
    columns, names = {}, {}
    for i, (column, channel) in enumerate(channels.items()):
        values, bad = to_float(rows, column, what=f"{column!r}", decimal_comma=decimal_comma)
        # Positional names: a file may call its columns "time", "value" or "line" too.
        columns[f"__{i}"], names[f"__{i}"] = values, channel
        found.append(bad)
    wide = pl.DataFrame({"__line": rows.get_column("line"), "__time": times, **columns})
    long = (
        wide.unpivot(
            index=["__line", "__time"], on=list(columns), variable_name="__column", value_name="value"
        )
        .drop_nulls("value")
        .select(
            pl.col("__line").alias("line"),
            pl.col("__time").alias("time"),
            pl.col("__column").replace_strict(names, return_dtype=pl.String).alias("channel"),
            "value",
        )
    )
    return long, combine(*found)


def body_lines(source: SourceText, first_line: int) -> pl.DataFrame:
    """The non-blank lines from `first_line` on: line (UInt32, 1-based), text."""
    texts = (source.text or "").split("\n")[first_line - 1 :]
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String}).with_row_index(
        "line", offset=first_line
    )
    return frame.with_columns(pl.col("text").str.strip_chars_end("\r")).filter(
        pl.col("text").str.strip_chars().str.len_bytes() > 0
    )


def row_problems(
    rows: pl.DataFrame, reason: pl.Series, separator: str, *, text_column: str | None = None
) -> pl.DataFrame:
    """Problems for the rows whose `reason` is set; the text is `text_column` or the row's fields
    joined again by `separator`."""
    if reason.is_null().all():
        return no_problems()
    if text_column is not None:
        text = pl.col(text_column)
    else:
        text = pl.concat_str(pl.exclude("line", "reason"), separator=separator, ignore_nulls=True)
    return (
        rows.with_columns(reason=reason)
        .filter(pl.col("reason").is_not_null())
        .select("line", "reason", text.alias("text"))
        .cast(PROBLEM_SCHEMA)  # type: ignore[arg-type]
    )
