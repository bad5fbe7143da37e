"""An input file as text: read once, checked for what would make any reader misread it.

Every reader starts here. A file that cannot be text (missing, empty, binary, a workbook) gets one
ERROR finding and no text; recoverable quirks (BOM, UTF-16, Latin-1, CR-only line ends, NUL padding
left by a logger killed mid-write) are undone here so that no reader has to know about them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from epi_ml.findings import Finding, Severity, has_errors

UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
SNIFF_BYTES = 4096
# Share of control bytes (other than tab/CR/LF) above which a file is not text.
BINARY_CONTROL_SHARE = 0.05
CONTROL_BYTES = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"

# Magic numbers of files people upload by mistake, and what to tell them.
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"PAR1", "a Parquet file", "give it a .parquet name so that it is read as Parquet"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)", "export the sheet as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook", "export the sheet as CSV"),
    (b"\x1f\x8b", "a gzip archive", "unpack it first"),
    (b"%PDF", "a PDF document", "upload the data file, not the report"),
    (b"\x89PNG", "a PNG image", "upload the data file, not a picture of it"),
    (b"\xff\xd8\xff", "a JPEG image", "upload the data file, not a picture of it"),
)


@dataclass
class SourceText:
    """The decoded text of one file (None when it is unusable) and what was found on the way."""

    path: Path
    text: str | None
    findings: list[Finding] = field(default_factory=list)
    _data: bytes | None = None  # UTF-8 bytes of `text`, for polars' CSV parser

    @property
    def usable(self) -> bool:
        return self.text is not None and not has_errors(self.findings)

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = (self.text or "").encode("utf-8")
        return self._data

    @property
    def ends_with_newline(self) -> bool:
        return bool(self.text) and self.text.endswith("\n")

    @property
    def last_line(self) -> int:
        """1-based number of the last line (a final line end starts no new line)."""
        text = self.text or ""
        return text.count("\n") + (0 if text.endswith("\n") or not text else 1)

    def head_lines(self, count: int) -> list[str]:
        """The first `count` lines (without line ends); cheap on large files."""
        lines = (self.text or "").split("\n", count)[:count]
        return [line.rstrip("\r") for line in lines]

    def body_bytes(self, first_line: int) -> bytes:
        """The UTF-8 bytes from the start of 1-based line `first_line` to the end."""
        data, offset = self.data, 0
        for _ in range(first_line - 1):
            offset = data.find(b"\n", offset) + 1
            if offset == 0:
                return b""
        return data[offset:]

    def finding(self, code: str, severity: Severity, message: str, hint: str = "", **kw) -> Finding:
        return Finding(code, severity, message, hint=hint, file=str(self.path), **kw)


def load_text(path: str | Path) -> SourceText:
    """Read and decode `path`; never raises for a bad file (the reason is an ERROR finding)."""
    path = Path(path)
    source = SourceText(path, None)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        source.findings.append(
            source.finding(
                "unreadable_file",
                Severity.ERROR,
                f"cannot read the file: {exc.strerror or exc}",
                "Check that the path exists and is a readable file.",
            )
        )
        return source
    text, utf8, notes = decode(raw, source)
    source.findings.extend(notes)
    if text is None:
        return source
    if not text or text.isspace():
        source.findings.append(
            source.finding(
                "empty_file",
                Severity.ERROR,
                "the file is empty" if not raw else "the file holds only blank lines",
                "The export or copy did not finish; export the data again.",
            )
        )
        return source
    source.text, source._data = text, utf8
    return source


def decode(raw: bytes, source: SourceText) -> tuple[str | None, bytes | None, list[Finding]]:
    """Bytes -> text, undoing BOMs, UTF-16, Latin-1, CR-only line ends and trailing NUL padding.
    Also returns the UTF-8 bytes of the text when they are `raw` itself (no copy needed)."""
    notes: list[Finding] = []
    for magic, what, hint in SIGNATURES:
        if raw.startswith(magic):
            finding = source.finding(
                "binary_file", Severity.ERROR, f"this is {what}, not a text log", hint
            )
            return None, None, [finding]
    if raw.startswith(UTF16_BOMS):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            return None, None, [_binary(source, raw)]
        notes.append(
            source.finding(
                "utf16_text",
                Severity.INFO,
                "the file is UTF-16 text (as Windows tools save it); decoded as such",
            )
        )
        return _line_ends(text, source, notes), None, notes
    raw = raw.removeprefix(UTF8_BOM)
    padded = raw.rstrip(b"\x00")
    if len(padded) < len(raw):
        notes.append(
            source.finding(
                "nul_padding",
                Severity.WARNING,
                f"the file ends in {len(raw) - len(padded)} NUL bytes, as a logger killed "
                "mid-write "
                "(power cut, crash) leaves it; they were ignored",
                "Check that the tool logged normally after that moment; the data before it is "
                "kept.",
            )
        )
        raw = padded
    if _looks_binary(raw[:SNIFF_BYTES]):
        return None, None, [*notes, _binary(source, raw)]
    try:
        text = raw.decode("utf-8")
        utf8: bytes | None = raw
    except UnicodeDecodeError as exc:
        utf8 = None
        text = raw.decode("cp1252", errors="replace")
        notes.append(
            source.finding(
                "not_utf8",
                Severity.INFO,
                f"the file is not UTF-8 (byte {exc.start}); decoded as Windows-1252",
                "Only labels with accented characters or units like '°C' can be affected.",
            )
        )
    fixed = _line_ends(text, source, notes)
    return fixed, utf8 if fixed is text else None, notes


def _looks_binary(head: bytes) -> bool:
    if not head:
        return False
    if b"\x00" in head:
        return True
    control = len(head) - len(head.translate(None, CONTROL_BYTES))
    return control / len(head) > BINARY_CONTROL_SHARE


def _binary(source: SourceText, raw: bytes) -> Finding:
    return source.finding(
        "binary_file",
        Severity.ERROR,
        f"the file is not text (it starts with bytes {raw[:16].hex(' ')})",
        "Upload the tool's text export; a damaged copy must be taken again from the tool.",
    )


def _line_ends(text: str, source: SourceText, notes: list[Finding]) -> str:
    if "\n" not in text and "\r" in text:
        notes.append(
            source.finding(
                "cr_line_ends",
                Severity.INFO,
                "lines end in a bare CR (classic Mac OS); read as line ends",
            )
        )
        return text.replace("\r", "\n")
    return text
