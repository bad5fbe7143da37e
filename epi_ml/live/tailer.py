"""The live tailer: new lines of the tool logs under the landing folder into the live buffer within
a second of being written, so that the dashboard shows a run while it grows.

    tailer = Tailer(landing_dir, engine, configs)
    tailer.run(stop_event)              # poll every 0.25 s until stop_event is set
    tailer.poll_once()                  # one pass (tests, benchmarks)

A polling tailer (no inotify: landing folders are often network shares, where it does not work).
Each pass stats the known folders (a folder whose modification time changed is listed again, so new
day folders and files are found at once) and every tailed file, reads only the bytes appended since
the last pass and only complete lines (a last line without its line end waits for the next pass).
EPIC channel logs (`<tag>.txt`), `Shutters.txt` and `Messages.txt` are read with the readers' own
helpers (time formats and zones, numbers, tag maps: `raw:<tag>` for unknown tags), messages first,
so that each sample is labelled with the run open at its time (epi_ml.live.runs). A file whose
inode changes or that shrinks was replaced or rewritten: it is read again from its start.

Restart: the buffer itself is the tailer's memory (no state file). A file first seen is read from
its start, skipping its rows at or before the newest sample the buffer already holds for their
channel, so that a restart, or a log rewritten or replaced under the tailer, neither loses nor
doubles rows. One exception on the first pass after a start: channel logs not modified for
`catch_up` (10 min) are tailed from their end (no run grows in them; their past is batch
ingest's), and `Shutters.txt` / `Messages.txt` only if not modified for `history` (36 h), so that
the run in progress and the shutter states are known even after a long layer without events.
(A log rewritten in place to a larger size, same inode, cannot be told from an append.)

Bad lines never stop the loop: each is skipped and counted, the first of each file is logged with
file, line and reason. If the store cannot be written, nothing is marked read: the next pass
reads the same lines again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
from sqlalchemy import Engine

from epi_ml.findings import Severity
from epi_ml.ingest.tools import ToolConfig, tool_from_path
from epi_ml.live.buffer import append_samples, latest_times, trim
from epi_ml.live.runs import LiveTools, RunEvent, runs_taken_over
from epi_ml.readers.delimited import decimal_comma_used, row_problems, to_float
from epi_ml.readers.epic_events import MESSAGE_ROW, shutter_rows_to_long
from epi_ml.readers.epic_format import HEADER_LINES_SEARCHED, ROW, read_header, tag_from_filename
from epi_ml.readers.lines import PROBLEM_SCHEMA, combine, no_problems
from epi_ml.readers.naming import RAW_PREFIX
from epi_ml.readers.source import UTF8_BOM, SourceText
from epi_ml.readers.tagmaps import epic_shutter_channel
from epi_ml.readers.timestamps import EPIC_TIME, constant_offset, parse_times

log = logging.getLogger(__name__)

POLL_S = 0.25
CATCH_UP = timedelta(minutes=10)
HISTORY = timedelta(hours=36)
KEEP = timedelta(hours=2)  # trim: samples of no run / of ended runs kept this long
TRIM_EVERY_S = 60.0
HEAD_BYTES = 4096  # enough for any EPIC header
# A long replay is spread over passes, so that each pass (and its transaction) stays short.
FILE_BYTES_PER_POLL = 1 << 20
POLL_BYTES = 4 << 20
CHANNEL, SHUTTERS, MESSAGES, IGNORED = "channel", "shutters", "messages", "ignored"
EVENT_FILES = {"shutters.txt": SHUTTERS, "messages.txt": MESSAGES, "fitting.txt": IGNORED}
ORDER = {
    MESSAGES: 0,
    SHUTTERS: 1,
    CHANNEL: 2,
    None: 3,
    IGNORED: 4,
}  # run marks before the samples they mark
LONG_SCHEMA = {
    "tool_id": pl.String,
    "channel": pl.String,
    "time": pl.Datetime("us", "UTC"),
    "value": pl.Float64,
}


@dataclass
class TailStats:
    """Counts since start (what `epi-ml tail` prints now and then)."""

    passes: int = 0
    files: int = 0  # files being tailed
    lines: int = 0  # complete lines read
    samples: int = 0  # rows written to the buffer
    skipped: int = 0  # rows at or before what the buffer held (replays)
    messages: int = 0
    bad_lines: int = 0
    store_errors: int = 0


@dataclass
class TailedFile:
    path: Path
    tool: str
    inode: int
    kind: str | None = None  # None until its header is complete
    offset: int = 0  # bytes consumed: always the end of a complete line
    line: int | None = 0  # lines consumed; None when tailing began at the end of an old file
    separator: str = ","
    channels: dict[str, str] = field(default_factory=dict)  # column (or tag) -> channel
    # Until it has caught up, a file's rows at or before the newest sample the buffer held for
    # their channel when it was first read (`watermark`) are skipped: they are in already.
    replay: bool = True
    watermark: dict[str, datetime] = field(default_factory=dict)
    bad_lines: int = 0

    def where(self, line: int | None) -> str:
        return f"{self.path}:{line}" if line is not None else f"{self.path} (offset {self.offset})"


@dataclass
class _Chunk:
    file: TailedFile
    data: bytes
    end_offset: int
    past_watermark: bool = False  # it holds rows newer than what the buffer had: replay over


class Tailer:
    """Tails every EPIC log under `landing` into the live buffer of `engine`."""

    def __init__(
        self,
        landing: Path,
        engine: Engine,
        configs: dict[str, ToolConfig] | None = None,
        *,
        tools: LiveTools | None = None,
        poll_s: float = POLL_S,
        catch_up: timedelta = CATCH_UP,
        history: timedelta = HISTORY,
        keep: timedelta | None = KEEP,
        on_run: Callable[[RunEvent], None] | None = None,
    ) -> None:
        self.landing = Path(landing)
        self.engine = engine
        self.tools = tools or LiveTools(engine, configs, on_run=on_run)
        if tools is not None and on_run is not None:
            tools.on_run = on_run
        self.poll_s, self.catch_up, self.history, self.keep = poll_s, catch_up, history, keep
        self.stats = TailStats()
        self._files: dict[Path, TailedFile] = {}
        self._folders: dict[Path, int] = {}  # folder -> mtime_ns when it was last listed
        self._subfolders: dict[Path, list[Path]] = {}
        self._ignored: set[Path] = set()
        self._latest: dict[tuple[str, str], datetime] = {}  # (tool, channel) -> newest buffered
        self._latest_loaded: set[str] = set()
        self._started = False
        self._last_trim = time.monotonic()

    # -- the loop ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a pass that fails is logged and the next one tries again."""
        while not stop.is_set():
            begun = time.monotonic()
            try:
                self.poll_once()
                self._maybe_trim()
            except Exception:  # noqa: BLE001 - the loop outlives any one bad pass
                log.exception("live tailer: pass failed; trying again")
            stop.wait(max(0.0, self.poll_s - (time.monotonic() - begun)))

    def poll_once(self) -> int:
        """One pass: find new files, read what was appended, write it; returns rows written."""
        self.stats.passes += 1
        first_pass = not self._started
        self._discover(first_pass)
        self._started = True
        chunks = self._read_chunks()
        if not chunks:
            return 0
        messages: dict[str, list[pl.DataFrame]] = {}
        samples: list[pl.DataFrame] = []
        for chunk, frame in self._parse_all(chunks):
            if frame is None or frame.is_empty():
                continue
            if chunk.file.kind == MESSAGES:
                messages.setdefault(chunk.file.tool, []).append(frame)
            else:
                samples.append(frame)
        try:
            written = self._store(messages, samples)
        except Exception as exc:  # noqa: BLE001 - the store may be down for a moment
            self.stats.store_errors += 1
            log.warning(
                "live buffer: write failed (%s: %s); the lines are read again next pass",
                type(exc).__name__,
                exc,
            )
            return 0
        for chunk in chunks:
            self._commit(chunk)
        return written

    def _maybe_trim(self) -> None:
        if self.keep is None or time.monotonic() - self._last_trim < TRIM_EVERY_S:
            return
        self._last_trim = time.monotonic()
        dropped = trim(self.engine, self.keep)
        if dropped:
            log.info("live buffer: trimmed %d samples older than %s", dropped, self.keep)

    # -- finding files -------------------------------------------------------------------------
    def _discover(self, first_pass: bool) -> None:
        """List the folders that changed since they were last listed (all on the first pass)."""
        if not self.landing.is_dir():
            return
        stack = [self.landing]
        while stack:
            folder = stack.pop()
            try:
                mtime = folder.stat().st_mtime_ns
            except OSError:  # removed meanwhile
                self._folders.pop(folder, None)
                self._subfolders.pop(folder, None)
                continue
            if self._folders.get(folder) != mtime:
                self._folders[folder] = mtime
                self._subfolders[folder] = self._list(folder, first_pass)
            stack.extend(self._subfolders.get(folder, []))

    def _list(self, folder: Path, first_pass: bool) -> list[Path]:
        subfolders = []
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return []
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                subfolders.append(path)
            elif (
                entry.name.lower().endswith(".txt")
                and path not in self._files
                and path not in self._ignored
            ):
                self._track(path, entry, first_pass)
        return subfolders

    def _track(self, path: Path, entry: os.DirEntry[str], first_pass: bool) -> None:
        tool = tool_from_path(path, self.landing)
        kind = EVENT_FILES.get(path.name.lower())
        if tool is None or kind == IGNORED:
            self._ignored.add(path)
            return
        try:
            stat = entry.stat()
        except OSError:
            return
        tailed = TailedFile(path, tool, stat.st_ino)
        if first_pass:
            window = self.history if kind in (SHUTTERS, MESSAGES) else self.catch_up
            age = time.time() - stat.st_mtime
            if age > window.total_seconds():  # not growing now: its past is batch ingest's
                tailed.offset, tailed.line = _end_of_last_line(path, stat.st_size), None
                tailed.replay = False
        self._files[path] = tailed
        self.stats.files = len(self._files)

    # -- reading -------------------------------------------------------------------------------
    def _read_chunks(self) -> list[_Chunk]:
        chunks: list[_Chunk] = []
        budget = POLL_BYTES
        files = sorted(self._files.values(), key=lambda f: (ORDER[f.kind], str(f.path)))
        for tailed in files:
            if budget <= 0:
                break
            try:
                stat = tailed.path.stat()
            except OSError:  # gone (moved to the archive, rotated away)
                del self._files[tailed.path]
                self.stats.files = len(self._files)
                continue
            if stat.st_ino != tailed.inode or stat.st_size < tailed.offset:
                self._restart(tailed, stat.st_ino)
            if tailed.kind is None and not self._read_header(tailed):
                continue
            if tailed.kind == IGNORED:  # not an EPIC log: never looked at again
                del self._files[tailed.path]
                self._ignored.add(tailed.path)
                self.stats.files = len(self._files)
                continue
            if stat.st_size <= tailed.offset:
                continue
            chunk = self._read_new(
                tailed,
                min(stat.st_size, tailed.offset + FILE_BYTES_PER_POLL, tailed.offset + budget),
            )
            if chunk is not None:
                chunks.append(chunk)
                budget -= len(chunk.data)
        return chunks

    def _restart(self, tailed: TailedFile, inode: int) -> None:
        log.info("%s was replaced or rewritten; reading it again from its start", tailed.path)
        tailed.inode, tailed.kind, tailed.offset, tailed.line = inode, None, 0, 0
        tailed.replay, tailed.watermark = True, {}

    def _read_header(self, tailed: TailedFile) -> bool:
        """Recognise the file from its complete header lines; False while they are incomplete."""
        try:
            with tailed.path.open("rb") as f:
                head = f.read(HEAD_BYTES)
        except OSError:
            return False
        complete = head[: head.rfind(b"\n") + 1]
        lines = _decode(complete.removeprefix(UTF8_BOM)).split("\n")[:-1]
        if not lines:
            return False
        kind = EVENT_FILES.get(tailed.path.name.lower(), CHANNEL)
        what = {CHANNEL: "channel log", SHUTTERS: "shutter log", MESSAGES: "message log"}[kind]
        header = read_header(SourceText(tailed.path, "\n".join(lines) + "\n"), what=what)
        if any(f.severity is Severity.ERROR for f in header.findings):
            log.debug("%s: not an EPIC %s; not tailed", tailed.path, what)
            tailed.kind = IGNORED
            return True
        first = header.first_row_line or 1
        started = any(ROW.match(line) for line in lines[first - 1 :])
        if header.columns is None and not started and len(lines) < HEADER_LINES_SEARCHED:
            return False  # the column line may still be on its way
        if kind == SHUTTERS:
            tailed.channels = {c: _shutter_channel(c) for c in header.columns or []}
        elif kind == CHANNEL:
            tag = tag_from_filename(tailed.path.name)
            tool = self.tools.get(tailed.tool)
            tailed.channels = {tag: tool.channel(tag, where=str(tailed.path))}
        if tailed.replay:  # before the file counts as recognised: it needs the store
            self._set_watermark(tailed)
        for finding in header.findings:
            log.warning("%s: %s", tailed.path, finding.message)
        tailed.kind, tailed.separator = kind, header.separator
        if tailed.offset == 0:  # a file tailed from its end keeps its place
            tailed.offset = _line_offset(complete, first)
            tailed.line = first - 1
        return True

    def _read_new(self, tailed: TailedFile, upto: int) -> _Chunk | None:
        try:
            with tailed.path.open("rb") as f:
                f.seek(tailed.offset)
                data = f.read(upto - tailed.offset)
        except OSError:
            return None
        complete = data.rfind(b"\n") + 1  # a partial last line waits for the next pass
        if complete == 0:
            return None
        return _Chunk(tailed, data[:complete], tailed.offset + complete)

    def _commit(self, chunk: _Chunk) -> None:
        tailed = chunk.file
        tailed.offset = chunk.end_offset
        lines = chunk.data.count(b"\n")
        self.stats.lines += lines
        if tailed.line is not None:
            tailed.line += lines
        if chunk.past_watermark:
            tailed.replay, tailed.watermark = False, {}

    # -- parsing -------------------------------------------------------------------------------
    def _parse_all(self, chunks: list[_Chunk]) -> list[tuple[_Chunk, pl.DataFrame | None]]:
        """Each chunk's rows; the channel logs of one tool in one batch where that reads the same.
        A tool logs one file per channel, so a pass has a chunk of a line or two from each of
        dozens of files, and a parse costs about the same for one line as for a hundred (64
        files: ~0.3 s a pass parsed one by one on a 2-core VM, bench_dashboard)."""
        out: list[tuple[_Chunk, pl.DataFrame | None]] = []
        batches: dict[str, list[_Chunk]] = {}
        for chunk in chunks:
            tailed = chunk.file
            if tailed.kind == CHANNEL and tailed.separator == "," and not tailed.replay:
                batches.setdefault(tailed.tool, []).append(chunk)
            else:
                out.append((chunk, self._parse_one(chunk)))
        for tool_id, group in batches.items():
            frame = self._parse_batch(tool_id, group) if len(group) > 1 else None
            if frame is not None:
                out += [(group[0], frame), *((chunk, None) for chunk in group[1:])]
            else:
                out += [(chunk, self._parse_one(chunk)) for chunk in group]
        return out

    def _parse_batch(self, tool_id: str, group: list[_Chunk]) -> pl.DataFrame | None:
        """The new lines of several channel logs of one tool parsed at once; None (parse them one
        by one) unless every line reads cleanly at one UTC offset: a bad line's file and line, a
        file's own time format and the order within a file at a clock change (localize) are
        per file."""
        texts, channels = [], []
        for chunk in group:
            lines = _decode(chunk.data).split("\n")[:-1]
            texts += lines
            channels += list(chunk.file.channels.values()) * len(lines)
        schema = {"text": pl.String, "channel": pl.String}
        frame = pl.DataFrame({"text": texts, "channel": channels}, schema=schema)
        lines = _clean_lines(frame.with_row_index("line", offset=1))
        tool = self.tools.get(tool_id)
        try:
            frame, problems = parse_channel_lines(
                lines.select("line", "text"), "", tz=tool.tz, file=str(group[0].file.path.parent)
            )
        except Exception:  # noqa: BLE001 - the files are parsed one by one, which reports it
            return None
        if not problems.is_empty() or frame.height != lines.height:
            return None
        if tool.tz != "UTC":
            local = frame.get_column("time").dt.convert_time_zone(tool.tz).dt.replace_time_zone(None)
            if constant_offset(local, tool.tz) is None:
                return None
        return frame.select(
            pl.lit(tool_id).alias("tool_id"), lines.get_column("channel"), "time", "value"
        )

    def _parse_one(self, chunk: _Chunk) -> pl.DataFrame | None:
        try:
            return self._parse(chunk)
        except Exception:  # noqa: BLE001 - a bug on one file must not stop the others
            log.exception("%s: cannot read the new lines; skipped", chunk.file.path)
            return None

    def _parse(self, chunk: _Chunk) -> pl.DataFrame | None:
        tailed = chunk.file
        lines = _lines(chunk.data, tailed.line)
        if lines.is_empty():
            return None
        tool = self.tools.get(tailed.tool)
        file = str(tailed.path)
        if tailed.kind == MESSAGES:
            frame, problems = parse_message_lines(lines, tz=tool.tz, file=file)
            self.stats.messages += frame.height
        elif tailed.kind == SHUTTERS:
            frame, problems = parse_shutter_lines(
                lines, tailed.channels, separator=tailed.separator, tz=tool.tz, file=file
            )
        else:
            (channel,) = tailed.channels.values()
            frame, problems = parse_channel_lines(
                lines, channel, separator=tailed.separator, tz=tool.tz, file=file
            )
        self._report(tailed, problems)
        if tailed.kind != MESSAGES:
            frame = self._skip_buffered(chunk, frame)
            frame = frame.select(pl.lit(tailed.tool).alias("tool_id"), "channel", "time", "value")
        return frame

    def _report(self, tailed: TailedFile, problems: pl.DataFrame) -> None:
        if problems.is_empty():
            return
        self.stats.bad_lines += problems.height
        if tailed.bad_lines == 0:
            first = problems.row(0, named=True)
            log.warning(
                "%s: %s: %r; skipped (further bad lines of this file are only counted)",
                tailed.where(first["line"]),
                first["reason"],
                first["text"],
            )
        tailed.bad_lines += problems.height

    def _set_watermark(self, tailed: TailedFile) -> None:
        if tailed.tool not in self._latest_loaded:
            for channel, at in latest_times(self.engine, tailed.tool).items():
                key = (tailed.tool, channel)
                self._latest[key] = max(at, self._latest.get(key, at))
            self._latest_loaded.add(tailed.tool)
        tailed.watermark = {
            channel: self._latest[(tailed.tool, channel)]
            for channel in tailed.channels.values()
            if (tailed.tool, channel) in self._latest
        }

    def _skip_buffered(self, chunk: _Chunk, frame: pl.DataFrame) -> pl.DataFrame:
        """A replayed file's rows up to the watermark are in the buffer already. The replay lasts
        until a row beyond it arrives, not until the bytes have caught up: a copy that rewrites
        a log piece by piece brings its old rows over several passes."""
        tailed = chunk.file
        if not tailed.replay or not tailed.watermark:
            chunk.past_watermark = not frame.is_empty()
            return frame
        if frame.is_empty():
            return frame
        marks = pl.DataFrame(
            {"channel": list(tailed.watermark), "mark": list(tailed.watermark.values())},
            schema={"channel": pl.String, "mark": pl.Datetime("us", "UTC")},
        )
        joined = frame.join(marks, on="channel", how="left")
        kept = joined.filter(pl.col("mark").is_null() | (pl.col("time") > pl.col("mark")))
        self.stats.skipped += frame.height - kept.height
        chunk.past_watermark = not kept.is_empty()
        return kept.drop("mark")

    # -- writing -------------------------------------------------------------------------------
    def _store(self, messages: dict[str, list[pl.DataFrame]], samples: list[pl.DataFrame]) -> int:
        for tool_id, frames in messages.items():
            self.tools.get(tool_id).add_messages(pl.concat(frames))
        self.tools.settle()  # also retries the runs a failed pass left unsettled
        if not samples:
            return 0
        labelled = []
        for (tool_id,), frame in pl.concat(samples).group_by("tool_id", maintain_order=True):
            run_ids = self.tools.get(str(tool_id)).run_ids(frame.get_column("time"))
            labelled.append(frame.with_columns(run_id=run_ids))
        rows = self._still_live(pl.concat(labelled))
        written = append_samples(self.engine, rows)
        self.stats.samples += written
        newest = rows.group_by("tool_id", "channel").agg(pl.col("time").max())
        for tool_id, channel, at in newest.iter_rows():
            key = (tool_id, channel)
            self._latest[key] = max(at, self._latest.get(key, at))
        return written


    def _still_live(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Leave out samples of runs batch ingest has taken over (old logs read when the tailer
        starts). Samples of no run stay: their run's messages may come later; trim ages them."""
        taken = runs_taken_over(self.engine, rows.get_column("run_id").drop_nulls().unique().to_list())
        if not taken:
            return rows
        kept = rows.filter(pl.col("run_id").is_null() | ~pl.col("run_id").is_in(list(taken)))
        self.stats.skipped += rows.height - kept.height
        return kept


# ---------------------------------------------------------------------------------------------
# Parsing the new lines of a file. `lines`: line (1-based number in the file), text.
def parse_channel_lines(
    lines: pl.DataFrame, channel: str, *, separator: str = ",", tz: str = "UTC", file: str = ""
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """EPIC channel rows `DD/MM/YYYY HH:MM:SS.fff,value` -> (channel, time, value) and problems."""
    fields = pl.col("text").str.split_exact(separator, 1)
    shaped = pl.col("text").str.count_matches(separator, literal=True) == 1
    rows = lines.filter(shaped).select(
        "line",
        fields.struct.field("field_0").alias("time"),
        fields.struct.field("field_1").alias("value"),
    )
    bad_shape = lines.filter(~shaped).select(
        "line", pl.lit("not 'time,value'").alias("reason"), "text"
    )
    times = parse_times(rows.get_column("time"), tz=tz, expected=EPIC_TIME, file=file)
    decimal_comma = decimal_comma_used(rows, ["value"], separator)
    values, bad_values = to_float(
        rows, "value", what="value", decimal_comma=decimal_comma, required=True
    )
    found = combine(
        bad_shape.cast(PROBLEM_SCHEMA),  # type: ignore[arg-type]
        row_problems(rows, times.reason, separator),
        bad_values,
        _not_finite(rows.get_column("line"), values, rows.get_column("value")),
    )
    frame = pl.DataFrame({"time": times.utc, "value": values}).select(
        pl.lit(channel).alias("channel"), "time", "value"
    )
    return frame.filter(_storable()), found


def parse_shutter_lines(
    lines: pl.DataFrame,
    channels: dict[str, str],
    *,
    separator: str = ",",
    tz: str = "UTC",
    file: str = "",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Shutters.txt rows (time, then 0/1 per column) -> one (channel, time, value) per shutter."""
    columns = list(channels)
    count = pl.col("text").str.count_matches(separator, literal=True)
    shaped = count == len(columns)
    parts = pl.col("text").str.split(separator)
    rows = lines.filter(shaped).select(
        "line",
        parts.list.get(0).alias("time"),
        *(parts.list.get(i + 1).alias(c) for i, c in enumerate(columns)),
    )
    bad_shape = lines.filter(~shaped).select(
        "line", pl.lit(f"not time + {len(columns)} shutter columns").alias("reason"), "text"
    )
    long, problems, _ = shutter_rows_to_long(rows, channels, separator, tz=tz, file=file)
    found = combine(bad_shape.cast(PROBLEM_SCHEMA), problems)  # type: ignore[arg-type]
    return long.select("channel", "time", "value").filter(_storable()), found


def parse_message_lines(
    lines: pl.DataFrame, *, tz: str = "UTC", file: str = ""
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Messages.txt rows `time,caller,message,color` -> (time, caller, message) and problems."""
    parts = lines.with_columns(parts=pl.col("text").str.extract_groups(MESSAGE_ROW.pattern)).unnest(
        "parts"
    )
    bad_shape = parts.filter(pl.col("time").is_null()).select(
        "line", pl.lit("not 'time,caller,message,color'").alias("reason"), "text"
    )
    rows = parts.filter(pl.col("time").is_not_null())
    times = parse_times(rows.get_column("time"), tz=tz, expected=EPIC_TIME, file=file)
    found = combine(
        bad_shape.cast(PROBLEM_SCHEMA),  # type: ignore[arg-type]
        row_problems(rows.select("line", "text"), times.reason, ",", text_column="text"),
    )
    frame = (
        rows.with_columns(time=times.utc)
        .filter(pl.col("time").is_not_null())
        .select("time", "caller", "message")
    )
    return frame, found


def _storable() -> pl.Expr:
    value = pl.col("value")
    return pl.col("time").is_not_null() & value.is_not_null() & value.is_finite()


def _not_finite(lines: pl.Series, values: pl.Series, texts: pl.Series) -> pl.DataFrame:
    """NaN and inf are numbers to the readers, but the buffer keeps finite values only (SQLite
    cannot store NaN)."""
    bad = values.is_not_null() & ~values.is_finite()
    if not bad.any():
        return no_problems()
    return pl.DataFrame(
        {"line": lines.filter(bad), "reason": "value is not finite", "text": texts.filter(bad)}
    ).cast(PROBLEM_SCHEMA)  # type: ignore[arg-type]


def _shutter_channel(column: str) -> str:
    return epic_shutter_channel(column) if column.endswith("_Sh") else RAW_PREFIX + column


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:  # as the readers do: Windows-1252 when it is not UTF-8
        return data.decode("cp1252", errors="replace")


def _lines(data: bytes, consumed: int | None) -> pl.DataFrame:
    """Complete lines of a chunk (line ends stripped, blank lines left out), numbered after the
    `consumed` lines before them (0 when unknown)."""
    texts = _decode(data).split("\n")[:-1]
    frame = pl.DataFrame({"text": texts}, schema={"text": pl.String}).with_row_index(
        "line", offset=(consumed or 0) + 1
    )
    return _clean_lines(frame)


def _clean_lines(frame: pl.DataFrame) -> pl.DataFrame:
    """Line ends stripped, blank lines left out."""
    return frame.with_columns(pl.col("text").str.strip_chars_end("\r\x00")).filter(
        pl.col("text").str.strip_chars().str.len_bytes() > 0
    )


def _line_offset(data: bytes, line: int) -> int:
    """Byte offset of the start of 1-based `line` in `data`."""
    offset = 0
    for _ in range(line - 1):
        offset = data.find(b"\n", offset) + 1
        if offset == 0:
            return len(data)
    return offset


def _end_of_last_line(path: Path, size: int) -> int:
    """Where tailing an old file from its end starts: after its last complete line."""
    try:
        with path.open("rb") as f:
            start = max(0, size - 65_536)
            f.seek(start)
            tail = f.read(size - start)
    except OSError:
        return size
    at = tail.rfind(b"\n")
    return start + at + 1 if at >= 0 else start


__all__ = [
    "TailStats",
    "Tailer",
    "parse_channel_lines",
    "parse_message_lines",
    "parse_shutter_lines",
]
