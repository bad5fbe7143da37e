"""`epi-ml ingest`: per-file status and reasons, exit 0 / 3 / 2, --json; and the corpus of bad
inputs dropped into a tool's folder next to good data: every file gets a clear status and
message, its bytes are archived, and the good runs are built all the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from ingest_helpers import land, make_campaign
from test_readers_bad_inputs import BODY, HEADER, epic_text, noise
from typer.testing import CliRunner

from epi_ml.cli import app
from epi_ml.ingest.archive import sha256_file

runner = CliRunner()


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("campaign") / "twin"
    make_campaign(out, runs=2)
    return out


# The corpus: (file name, bytes, expected status). Dates are the real day's (no run of the twin
# is then), so these files are ingested on their own and feed no growth run.
CORPUS: list[tuple[str, bytes, str]] = [
    ("truncated/Ga.PID.MV.txt", epic_text().encode()[:-9], "accepted_with_warnings"),
    ("garbage/Ga.PID.MV.txt", noise(7, 4000), "quarantined"),
    ("empty/Ga.PID.MV.txt", b"", "quarantined"),
    # A wide table under a log's name: read as what it is, its unknown column kept as raw:value.
    ("wide-in-txt/Ga.PID.MV.txt", b"time,value\n2023-06-12 09:55:00,300\n", "accepted_with_warnings"),
    ("wrong-header/Ga.PID.MV.txt",
     ("Log of Ga\r\n\r\n" + "\r\n".join(BODY) + "\r\n").encode(), "quarantined"),
    ("semicolons/Ga.PID.MV.txt",
     epic_text([r.replace(",", ";") for r in BODY], [HEADER[0], "", "'Date;Ga.PID.MV"]).encode(),
     "accepted_with_warnings"),  # fmt: skip
    ("bom/Ga.PID.MV.txt", b"\xef\xbb\xbf" + epic_text().encode(), "accepted"),
    ("lf/Ga.PID.MV.txt", epic_text(end="\n").encode(), "accepted"),
    ("iso-dates/Ga.PID.MV.txt",
     epic_text([f"2023-06-12T{r[11:23]},{r.split(',')[1]}" for r in BODY]).encode(),
     "accepted_with_warnings"),  # fmt: skip
    ("nan-inf/Ga.PID.MV.txt",
     epic_text([*BODY[:5], BODY[5][:24] + "NaN", BODY[6][:24] + "inf", *BODY[7:]]).encode(),
     "accepted"),  # noted; a run's validation warns about non-finite samples  # fmt: skip
    ("huge/Ga.PID.MV.txt", epic_text([*BODY[:3], BODY[3][:24] + "1e308", *BODY[4:]]).encode(),
     "accepted"),  # read as it is; validation of a run judges impossible values
    ("duplicated/Ga.PID.MV.txt", epic_text([*BODY, *BODY[-5:]]).encode(), "accepted"),  # noted
    ("unknown-tag/Zz.Widget.MV.txt",
     epic_text(header=["'EPIC Zz.Widget.MV Log File", "", "'Date,Zz.Widget.MV"]).encode(),
     "accepted_with_warnings"),  # fmt: skip
    ("xlsx/export.csv", b"PK\x03\x04" + b"\x00" * 300, "quarantined"),
    ("notes/call-bob.txt", b"call Bob about the Ga cell\n", "quarantined"),
]


def test_ingest_prints_status_per_file_and_exits_0_when_all_is_accepted(
    campaign: Path, isolated_home: Path
) -> None:
    landing = land(campaign, isolated_home)
    result = runner.invoke(app, ["ingest", str(landing)])
    assert result.exit_code == 0, result.output
    assert "accepted                 " in result.output and "Ga.PID.MV.txt  [sensors," in result.output
    assert "runs: 2 in these logs (2 new)" in result.output
    assert "MBE1-20260105-01" in result.output and "measurements:" in result.output
    again = runner.invoke(app, ["ingest", str(landing)])
    assert again.exit_code == 0 and "(seen before)" in again.output


def test_the_corpus_of_bad_inputs_is_reported_file_by_file_and_nothing_is_lost(
    campaign: Path, isolated_home: Path
) -> None:
    landing = land(campaign, isolated_home)
    lab = isolated_home / "landing" / "LAB9"
    for name, data, _ in CORPUS:
        path = lab / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    result = runner.invoke(app, ["ingest", "--json", str(landing), str(lab)])
    assert result.exit_code == 3, result.output
    report = json.loads(result.output)
    by_path = {f["path"]: f for f in report["files"]}
    for name, data, expected in CORPUS:
        outcome = by_path[str(lab / name)]
        assert outcome["status"] == expected, (name, outcome["findings"])
        if expected != "accepted":
            serious = [f for f in outcome["findings"] if f["severity"] != "info"]
            assert serious, name
            for finding in serious:
                assert finding["file"] == str(lab / name) and finding["message"] and finding["hint"], finding
        # Nothing lost: the bytes are archived under their hash, the bad ones too.
        if data:
            archived = isolated_home / "archive" / outcome["sha256"][:2] / outcome["sha256"]
            assert sha256_file(next(archived.iterdir())) == outcome["sha256"]
    # The twin's runs are built all the same.
    assert {r["run_id"]: r["status"] for r in report["built"]} == {
        "MBE1-20260105-01": "accepted",
        "MBE1-20260105-02": "accepted",
    }
    assert all(f["status"] in ("accepted", "skipped") for f in report["files"] if "/LAB9/" not in f["path"])

    text = runner.invoke(app, ["ingest", str(lab)])
    assert text.exit_code == 3
    assert "quarantined              " + str(lab / "garbage" / "Ga.PID.MV.txt") in text.output
    assert "ERROR [binary_file]" in text.output


def test_usage_errors_exit_2(isolated_home: Path) -> None:
    result = runner.invoke(app, ["ingest", str(isolated_home / "nowhere")])
    assert result.exit_code == 2 and "no such file or folder" in result.output
    assert runner.invoke(app, ["ingest"]).exit_code == 2
    (isolated_home).mkdir(parents=True, exist_ok=True)
    (isolated_home / "tools.yaml").write_text("MBE8:\n  timezone: Mars/Olympus\n")
    result = runner.invoke(app, ["ingest", str(isolated_home)])
    assert result.exit_code == 2 and "unknown time zone" in result.output


def test_tool_option_for_files_outside_landing(campaign: Path, tmp_path: Path, isolated_home: Path) -> None:
    folder = tmp_path / "usb-stick"
    shutil.copytree(next(campaign.glob("MBE1/logs/*")), folder)
    result = runner.invoke(app, ["ingest", "--tool", "MBE7", "--json", "--no-build", str(folder)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {f["tool"] for f in report["files"]} == {"MBE7"}
    assert report["built"] == [] and report["runs"]
