"""RHEED growth-rate analysis: synthetic oscillations, bad traces, the twin, real-style exports,
the `epi-ml rheed` command."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from epi_ml.analysis.rheed import (
    RheedEstimate,
    estimate_from_export,
    estimate_growth_rate,
    growth_rate_in_window,
)
from epi_ml.cli import app
from epi_ml.physics import GAAS_MONOLAYER_NM, monolayer_thickness_nm
from epi_ml.readers import read_rheed_export
from epi_ml.twin.run import RunTrace
from epi_ml.twin.single import GrownRun, grow_one_run
from epi_ml.twin.writers import make_writer, write_run

runner = CliRunner()


def damped_sine(
    rate: float,
    duration: float,
    *,
    noise: float = 0.02,
    hz: float = 5.0,
    damping_ml: float = 15.0,
    seed: int = 0,
    times: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A specular trace like a real one: roughening drop over ~2 ML, a damped oscillation with a
    maximum at growth start, multiplicative noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration, 1.0 / hz) if times is None else times
    theta = rate * t  # monolayers deposited
    clean = 1000.0 * (
        1
        - 0.3 * (1 - np.exp(-theta / 2))
        - 0.25 * np.exp(-theta / damping_ml) * (1 - np.cos(2 * np.pi * theta))
    )
    return t, clean * (1 + rng.normal(0, noise, len(t)))


def assert_no_oscillation(estimate: RheedEstimate, *codes: str) -> None:
    assert not estimate.oscillating
    assert estimate.rate_ml_s is None and estimate.uncertainty_ml_s is None
    assert estimate.reason, "a rejection says why"
    if codes:
        assert estimate.reason_code in codes, (estimate.reason_code, estimate.reason)


# --- synthetic traces ------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.15, 0.4, 0.8, 1.5])
def test_rates_are_recovered_from_damped_sines_with_trend_and_noise(rate: float) -> None:
    t, y = damped_sine(rate, duration=max(30.0, 8 / rate), seed=int(rate * 100))
    estimate = estimate_growth_rate(t, y)
    assert estimate.oscillating, estimate.reason
    assert estimate.method == "damped_sine"
    assert estimate.rate_ml_s == pytest.approx(rate, rel=0.005)
    assert abs(estimate.rate_ml_s - rate) <= 3 * estimate.uncertainty_ml_s
    assert estimate.rate_nm_s == pytest.approx(estimate.rate_ml_s * GAAS_MONOLAYER_NM)
    assert estimate.rate_um_h == pytest.approx(estimate.rate_nm_s * 3.6)
    assert estimate.period_s == pytest.approx(1 / estimate.rate_ml_s)
    assert estimate.n_periods >= 5 and estimate.quality["r2"] > 0.9
    fft = estimate_growth_rate(t, y, method="fft")
    assert fft.method == "fft" and fft.rate_ml_s == pytest.approx(rate, rel=0.02)


def test_the_uncertainty_covers_the_error() -> None:
    z = []
    for seed in range(25):
        rate = 0.3 + 0.05 * seed
        t, y = damped_sine(rate, 30.0, noise=0.05, seed=seed)
        estimate = estimate_growth_rate(t, y)
        assert estimate.oscillating, estimate.reason
        z.append((estimate.rate_ml_s - rate) / estimate.uncertainty_ml_s)
    z = np.abs(np.array(z))
    assert np.mean(z < 2) >= 0.85 and z.max() < 4, z  # 1 sigma is a real sigma, not 10x off


def test_non_uniform_sampling_with_gaps() -> None:
    rng = np.random.default_rng(4)
    steps = rng.exponential(0.2, 200)  # event-driven
    steps[[50, 120]] = 0.6  # two gaps of most of a period
    t, y = damped_sine(0.7, 0.0, times=np.cumsum(steps), seed=4)
    estimate = estimate_growth_rate(t, y)
    assert estimate.oscillating, estimate.reason
    assert estimate.rate_ml_s == pytest.approx(0.7, rel=0.005)
    shuffled = rng.permutation(len(t))  # out of order, with a repeated time stamp
    times, values = np.append(t[shuffled], t[10]), np.append(y[shuffled], y[10])
    again = estimate_growth_rate(times, values)
    assert again.rate_ml_s == pytest.approx(estimate.rate_ml_s, rel=1e-3)


def test_other_materials_scale_the_rate_in_nm() -> None:
    t, y = damped_sine(0.34, 30.0)
    monolayer = float(monolayer_thickness_nm("AlAs"))
    estimate = estimate_growth_rate(t, y, monolayer_nm=monolayer)
    assert estimate.rate_nm_s == pytest.approx(estimate.rate_ml_s * monolayer)
    assert estimate.uncertainty_nm_s == pytest.approx(estimate.uncertainty_ml_s * monolayer)


def test_short_traces_give_no_rate_or_a_flagged_one() -> None:
    t, y = damped_sine(0.5, 4.0)  # two periods
    assert_no_oscillation(estimate_growth_rate(t, y))
    t, y = damped_sine(0.5, 8.5, noise=0.01)  # four periods: a rate, flagged
    estimate = estimate_growth_rate(t, y)
    assert estimate.oscillating, estimate.reason
    assert estimate.rate_ml_s == pytest.approx(0.5, rel=0.01)
    assert any("low confidence" in w for w in estimate.warnings)
    t, y = damped_sine(0.5, 8.5, noise=0.2)  # and four noisy ones: nothing
    assert_no_oscillation(estimate_growth_rate(t, y))


@pytest.mark.parametrize("seed", range(6))
def test_noise_and_drift_are_no_oscillation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = [60, 300, 2000][seed % 3]
    t = np.arange(n) * 0.2
    white = 1000 + rng.normal(0, 10, n)
    drift = 1000 + np.cumsum(rng.normal(0, 3, n)) + rng.normal(0, 10, n)
    drop = 1000 * (1 - 0.3 * (1 - np.exp(-t / 3))) + rng.normal(0, 10, n)
    for y in (white, drift, drop):
        assert_no_oscillation(estimate_growth_rate(t, y))


def test_bad_traces_say_why_instead_of_raising() -> None:
    t = np.arange(200) * 0.2
    assert_no_oscillation(estimate_growth_rate([], []), "no_data")
    assert_no_oscillation(estimate_growth_rate(t, np.full(200, np.nan)), "no_data")
    assert_no_oscillation(estimate_growth_rate(t, np.full(200, 812.0)), "flat")
    assert_no_oscillation(estimate_growth_rate(t[:10], t[:10]), "too_short")
    slow = np.arange(40) * 10.0  # 0.1 Hz: 0.04 ML/s at most
    assert_no_oscillation(estimate_growth_rate(slow, np.sin(slow)), "undersampled")
    t, y = damped_sine(0.8, 30.0)
    y[::7] = np.nan
    partly = estimate_growth_rate(t, y)
    assert partly.oscillating and partly.rate_ml_s == pytest.approx(0.8, rel=0.01)
    assert any("non-finite" in w for w in partly.warnings)
    json.dumps(partly.to_dict(), allow_nan=False)
    json.dumps(estimate_growth_rate(t, np.full(len(t), 3.0)).to_dict(), allow_nan=False)


def test_misuse_raises() -> None:
    with pytest.raises(ValueError, match="same length"):
        estimate_growth_rate([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="method"):
        estimate_growth_rate([0.0, 1.0], [1.0, 2.0], method="wavelet")  # type: ignore[arg-type]


def test_a_steady_modulation_is_no_growth_oscillation() -> None:
    """A rotating wafer's azimuth modulates the spot without damping: never a growth rate."""
    rng = np.random.default_rng(2)
    t = np.arange(0.0, 300.0, 0.2)
    y = 1000 * (1 + 0.3 * np.cos(2 * np.pi * t / 6.0)) * (1 + rng.normal(0, 0.02, len(t)))
    assert_no_oscillation(estimate_growth_rate(t, y), "undamped")
    # with the rotation known, the washed-out oscillation under it is found
    rpm = 10.0
    _, growth = damped_sine(0.8, 300.0, noise=0.0, damping_ml=20)
    azimuth = 1 + 0.3 * np.cos(2 * np.pi * rpm / 60 * t + 1.0)
    y = (growth * 0.25 + 750) * azimuth * (1 + rng.normal(0, 0.01, len(t)))
    estimate = estimate_growth_rate(t, y, rotation_rpm=rpm)
    assert estimate.oscillating, estimate.reason
    assert estimate.rate_ml_s == pytest.approx(0.8, rel=0.01)
    assert any("rotating" in w for w in estimate.warnings)


# --- the twin --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def calibration_runs() -> list[GrownRun]:
    return [grow_one_run("rheed_calibration", seed=seed, deviate=False) for seed in range(3)]


def growth_layers(trace: RunTrace) -> list[tuple[str, dict, np.ndarray]]:
    """(label, truth, mask of the RHEED samples in the layer's shutter-open window)."""
    out = []
    for step, truth in zip(trace.plan.steps, trace.layers, strict=True):
        if step.kind == "layer":
            inside = (trace.rheed_t >= step.start_s) & (trace.rheed_t < step.end_s)
            out.append((step.label or "", truth, inside))
    return out


def sensor_table(trace: RunTrace) -> pl.DataFrame:
    """The run's RHEED and rotation as a canonical long table."""

    def rows(channel: str, t: np.ndarray, v: np.ndarray) -> pl.DataFrame:
        start = trace.start.replace(tzinfo=None)
        return pl.DataFrame(
            {
                "time": [start + timedelta(seconds=float(s)) for s in t],
                "channel": channel,
                "value": v.astype(float),
            }
        ).with_columns(pl.col("time").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))

    return pl.concat(
        [
            rows("RHEED.I", trace.rheed_t, trace.rheed),
            rows("sub.rpm", trace.log_t, trace.values["sub.rpm"]),
        ]
    )


def test_twin_calibration_layers_agree_with_the_truth_within_2_percent(
    calibration_runs: list[GrownRun],
) -> None:
    checked = 0
    for run in calibration_runs:
        for label, truth, inside in growth_layers(run.trace):
            estimate = estimate_growth_rate(run.trace.rheed_t[inside], run.trace.rheed[inside])
            true_rate = truth["growth_rate_ml_s"]
            assert estimate.oscillating, (label, estimate.reason)
            error = abs(estimate.rate_ml_s - true_rate)
            if label.startswith("rheed_"):  # the short, non-rotating calibration growths
                assert error <= 0.02 * true_rate, (label, estimate.rate_ml_s, true_rate)
                assert error <= 3 * estimate.uncertainty_ml_s, (label, estimate.summary())
                checked += 1
            else:  # 90-450 s layers: RHEED sees their first minute, still in the shutter
                # transient (a few % more flux), while the truth is the layer's mean
                assert error <= 0.03 * true_rate, (label, estimate.rate_ml_s, true_rate)
    assert checked == 12


def test_growth_rate_in_window_reads_a_sensor_table(calibration_runs: list[GrownRun]) -> None:
    trace = calibration_runs[0].trace
    sensors = sensor_table(trace)
    truths = {t["label"]: t for t in trace.layers}
    algaas = truths["rheed_algaas"]
    estimate = growth_rate_in_window(
        sensors, algaas["start"], algaas["end"], material="AlGaAs", x=algaas["composition"]
    )
    assert estimate.rate_ml_s == pytest.approx(algaas["growth_rate_ml_s"], rel=0.02)
    assert estimate.rate_nm_s == pytest.approx(algaas["growth_rate_nm_s"], rel=0.02)
    assert not estimate.warnings  # the calibration run does not rotate
    with pytest.raises(ValueError, match="composition"):
        growth_rate_in_window(sensors, algaas["start"], algaas["end"], material="AlGaAs")
    empty = growth_rate_in_window(sensors, "2020-01-01T00:00:00Z", "2020-01-01T00:01:00Z")
    assert_no_oscillation(empty, "no_data")
    assert "RHEED.I" in empty.reason


@pytest.mark.parametrize(("recipe", "seed"), [("hemt_algaas_gaas", 1), ("xrd_calibration", 0)])
def test_rotating_layers_give_the_right_rate_or_none(recipe: str, seed: int) -> None:
    trace = grow_one_run(recipe, seed=seed, deviate=False).trace
    sensors = sensor_table(trace)
    found = 0
    for label, truth, _ in growth_layers(trace):
        material, x = truth["material"], truth["composition"]
        estimate = growth_rate_in_window(
            sensors, truth["start"], truth["end"], material=material, x=x
        )
        assert any("rotating" in w for w in estimate.warnings)
        if estimate.oscillating:  # never a confidently wrong number
            error = abs(estimate.rate_ml_s - truth["growth_rate_ml_s"])
            assert (
                error <= 0.05 * truth["growth_rate_ml_s"] or error <= 2 * estimate.uncertainty_ml_s
            ), (label, estimate.summary(), truth["growth_rate_ml_s"])
            found += 1
    assert found >= 2  # the washed-out oscillation is still there on several layers


# --- files and the command line --------------------------------------------------------------
@pytest.fixture(scope="module")
def twin_export(tmp_path_factory: pytest.TempPathFactory, calibration_runs: list[GrownRun]) -> Path:
    """The run as `epi-ml simulate --format csv` writes it: <run>.csv, _rheed.csv, _messages.csv."""
    run = calibration_runs[1]
    tool_dir = tmp_path_factory.mktemp("twin") / "MBE1"
    write_run(make_writer("csv", tool_dir), run.trace, run.state)
    return tool_dir / "logs" / f"{run.trace.run_id}_rheed.csv"


def test_cli_on_a_twin_export_per_layer(
    twin_export: Path, calibration_runs: list[GrownRun]
) -> None:
    trace = calibration_runs[1].trace
    messages = twin_export.with_name(f"{trace.run_id}_messages.csv")
    result = runner.invoke(app, ["rheed", str(twin_export), "--messages", str(messages), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    truth = {t["index"]: t for t in trace.layers}
    by_label = {}
    for row in report["results"]:
        layer = truth[row["layer"]["index"]]
        by_label[layer["label"]] = row
        assert row["oscillating"], row["reason"]
        assert row["material"] == layer["material"]
        if layer["label"].startswith("rheed_"):
            assert row["rate_ml_s"] == pytest.approx(layer["growth_rate_ml_s"], rel=0.02)
    assert set(by_label) == {"smoothing", "rheed_ga_slow", "rheed_ga", "rheed_al",
                             "rheed_algaas", "cap"}  # fmt: skip
    assert by_label["rheed_al"]["monolayer_nm"] == pytest.approx(
        float(monolayer_thickness_nm("AlAs"))
    )
    text = runner.invoke(app, ["rheed", str(twin_export), "--messages", str(messages)])
    assert text.exit_code == 0
    assert "ML/s" in text.output and "nm/s" in text.output and "µm/h" in text.output


def test_cli_window_by_seconds_and_by_time(
    twin_export: Path, calibration_runs: list[GrownRun]
) -> None:
    trace = calibration_runs[1].trace
    layer = next(t for t in trace.layers if t["label"] == "rheed_ga")
    by_time = runner.invoke(
        app, ["rheed", str(twin_export), "--start", layer["start"], "--end", layer["end"], "--json"]
    )
    assert by_time.exit_code == 0, by_time.output
    (row,) = json.loads(by_time.output)["results"]
    assert row["rate_ml_s"] == pytest.approx(layer["growth_rate_ml_s"], rel=0.02)
    first = float(trace.rheed_t[0])  # the file's seconds count from its first sample
    step = next(s for s in trace.plan.steps if s.label == "rheed_ga")
    by_seconds = runner.invoke(
        app,
        ["rheed", str(twin_export), "--start", str(step.start_s - first),
         "--end", str(step.end_s - first), "--json"],
    )  # fmt: skip
    assert json.loads(by_seconds.output)["results"][0]["rate_ml_s"] == pytest.approx(
        row["rate_ml_s"], rel=1e-3
    )
    whole = runner.invoke(app, ["rheed", str(twin_export)])  # a whole run is no oscillation
    assert whole.exit_code == 1 and "no oscillation" in whole.output


def write_export(path: Path, rate: float, *, second: bool = False, seed: int = 0) -> Path:
    """A real-style export: time (s) and intensity columns, uneven steps (event-driven)."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.05, 0.3, 180))
    _, intensity = damped_sine(rate, 0.0, times=times, seed=seed)
    header = "time,intensity" + (",background" if second else "")
    lines = [header]
    for t, v in zip(times, intensity, strict=True):
        extra = f",{100 + rng.normal(0, 2):.2f}" if second else ""
        lines.append(f"{t:.3f},{v:.2f}{extra}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_export_windows_are_estimated_each(tmp_path: Path) -> None:
    trace = read_rheed_export(write_export(tmp_path / "scan.csv", 0.6, second=True))
    assert trace.ok and trace.windows == ["intensity", "background"]
    estimates = estimate_from_export(trace)
    assert estimates["intensity"].rate_ml_s == pytest.approx(0.6, rel=0.01)
    assert_no_oscillation(estimates["background"])
    only = estimate_from_export(trace, window="intensity", start_s=2.0)
    assert list(only) == ["intensity"] and only["intensity"].oscillating
    with pytest.raises(ValueError, match="no window"):
        estimate_from_export(trace, window="sensor 9")


def test_cli_on_a_real_style_export(tmp_path: Path) -> None:
    path = write_export(tmp_path / "rheed_export.csv", 0.45, second=True)
    result = runner.invoke(app, ["rheed", str(path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rows = {r["window"]: r for r in report["results"]}
    assert rows["intensity"]["rate_ml_s"] == pytest.approx(0.45, rel=0.01)
    assert rows["intensity"]["uncertainty_ml_s"] > 0
    assert rows["background"]["oscillating"] is False and rows["background"]["reason"]
    text = runner.invoke(app, ["rheed", str(path), "--window", "background"])
    assert text.exit_code == 1 and "no oscillation:" in text.output


def test_cli_usage_errors(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["rheed", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "no such file" in missing.output
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"\x00\x01\x02 not a trace")
    assert runner.invoke(app, ["rheed", str(garbage)]).exit_code == 2
    no_rows = tmp_path / "empty.csv"
    no_rows.write_text("time,intensity\n")
    unreadable = runner.invoke(app, ["rheed", str(no_rows)])
    assert unreadable.exit_code == 2 and "ERROR" in unreadable.output  # the reader's finding
    wide = tmp_path / "wide.csv"
    wide.write_text("time,Ga.T\n2026-01-05T10:00:00Z,900.0\n2026-01-05T10:00:01Z,900.1\n")
    no_channel = runner.invoke(app, ["rheed", str(wide)])
    assert no_channel.exit_code == 2 and "RHEED.I" in no_channel.output
    export = write_export(tmp_path / "r.csv", 0.5)
    no_x = runner.invoke(app, ["rheed", str(export), "--material", "AlGaAs"])
    assert no_x.exit_code == 2 and "--x" in no_x.output
    assert runner.invoke(app, ["rheed", str(export), "--material", "GaN"]).exit_code == 2
    assert runner.invoke(app, ["rheed", str(export), "--start", "soon"]).exit_code == 2
