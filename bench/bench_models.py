"""Growth-model accuracy: physics baseline vs gradient boosting vs the hybrid PyTorch model, on
later weeks of the training campaign and on a campaign the models never saw.

- Training campaign: the twin, 450 runs on 2 tools (seed 1, 17 weeks), ingested with every run
  built, its features and training set. The models fit on the first 8 weeks (their own split by
  calibration epoch inside: fit / early stopping / conformal calibration / gate evaluation);
  the test is weeks 9-17. Nine weeks, not four: layers of one calibration epoch share its error,
  so a coverage measured on 4 weeks (10 epochs) has a 95 % interval of about ±6 points, wider
  than the 88-92 % it is held to; the coverage of each 4-week block is printed too.
- The same weeks as the product serves them: the models refit before every 4-week block on all
  that was grown before it (rolling origin; the retrain sensor retrains far more often).
- Unseen campaign: another seed (2) with 3 tools (MBE2 and MBE3 are other tools than the
  training campaign's, drawn from that seed; MBE3 has no namesake there): every measured layer.

Runs the validation quarantines (a stuck shutter: the layer did not grow as logged) are in no
training set and no test, as in the product; the layers of the runs quarantined for a stuck
shutter are evaluated on their own (their features built all the same), with the physics
baseline from the logged shutter times and from the times the cells' heat load gives.

Rows: the XRD measurement itself against the twin's truth (the noise floor), the physics
baseline with the calibration in force, the physics baseline with the calibration frozen at the
end of the training weeks (stale), gradient boosting, the hybrid model from the layer as grown
(sensors read) and from the recipe only. Errors against the XRD results (what a fab sees) and
against the grown truth (what the twin knows). Coverage of the 90 % intervals against XRD.

    python bench/bench_models.py --out bench-out [--runs 450] [--unseen-runs 300] [--trials 6]
        [--cache DIR]   # keep the built campaigns (~20 min to build) for the next run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TRAIN_WEEKS = 8
BLOCK_WEEKS = 4  # the later weeks' coverage is also printed per block of this many weeks
TARGET_RATIO_XRD, TARGET_VS_STALE, COVERAGE_BAND = 1.3, 2.0, (0.88, 0.92)


def build_campaign(folder: Path, runs: int, seed: int, tools: int) -> dict[str, Any]:
    """Simulate, ingest (every run built), build features and the training set; return the
    training set with the twin's truth joined, the traces and the calibration history."""
    from epi_ml.calibration import calibration_history
    from epi_ml.features.build import build_run_features, build_training_set, run_traces, training_frame
    from epi_ml.ingest.batch import ingest_paths, open_context
    from epi_ml.settings import reset_settings_cache
    from epi_ml.twin import simulate_campaign

    os.environ["EPI_ML_HOME"] = str(folder / "home")
    reset_settings_cache()
    landing = folder / "landing"
    started = time.perf_counter()
    manifest = simulate_campaign(landing / "twin", runs=runs, seed=seed, tools=tools)
    ctx = open_context(landing_root=landing)
    report = ingest_paths(ctx, [landing])
    history = calibration_history(ctx)
    quarantined = [run for run in report.built if run.status == "quarantined"]
    stuck = [run.run_id for run in quarantined if any(f.code == "stuck_shutter" for f in run.findings)]
    for run in report.built:
        if run.status != "quarantined" or run.run_id in stuck:
            build_run_features(ctx, run.run_id, history)
    dataset = build_training_set(ctx)
    validated = dataset.frame.get_column("run_id").unique().to_list()
    held = training_frame(ctx, validated + stuck).filter(pl.col("run_id").is_in(stuck))
    truth = pl.DataFrame(
        [
            {"run_id": r["run_id"], "layer": layer["index"], "true_thickness_nm": layer.get("thickness_nm"),
             "true_composition": layer.get("composition")}
            for r in manifest["truth"]["runs"] for layer in r["layers"]
        ],
        schema={"run_id": pl.String, "layer": pl.Int64, "true_thickness_nm": pl.Float64,
                "true_composition": pl.Float64},
    )  # fmt: skip
    return {
        "training_set": dataset.frame.join(truth, on=["run_id", "layer"], how="left"),
        "traces": pl.read_parquet(dataset.traces_path),
        "stuck_set": held.join(truth, on=["run_id", "layer"], how="left"),
        "stuck_traces": run_traces(ctx, stuck),
        "quarantined": len(quarantined),
        "stuck_runs": len(stuck),
        "history": history,
        "seconds": time.perf_counter() - started,
        "start": manifest["start"],
        "end": manifest["end"],
        "tools": manifest["tools"],
        "runs": runs,
    }


FRAMES = ("training_set", "traces", "stuck_set", "stuck_traces", "history")


def cached_campaign(cache: Path | None, folder: Path, runs: int, seed: int, tools: int) -> dict[str, Any]:
    """build_campaign, or its result kept under `cache` by a run with the same parameters (the
    twin is deterministic per seed, so a kept campaign is the one a build would give)."""
    if cache is None:
        return build_campaign(folder, runs, seed, tools)
    kept = cache / f"campaign-seed{seed}-runs{runs}-tools{tools}"
    if (kept / "meta.json").exists():
        meta = json.loads((kept / "meta.json").read_text())
        return meta | {name: pl.read_parquet(kept / f"{name}.parquet") for name in FRAMES}
    campaign = build_campaign(folder, runs, seed, tools)
    kept.mkdir(parents=True, exist_ok=True)
    for name in FRAMES:
        campaign[name].write_parquet(kept / f"{name}.parquet")
    meta = {k: v for k, v in campaign.items() if k not in FRAMES}
    (kept / "meta.json").write_text(json.dumps(meta, default=str))
    return campaign


def stale_physics(examples: pl.DataFrame, history: pl.DataFrame, frozen_at: datetime, half: np.ndarray) -> pl.DataFrame:
    """The physics baseline with each tool's calibration as it stood at `frozen_at`, as
    residuals against the in-force baseline (so metrics compare like with like)."""
    from epi_ml.baseline import predict_layer
    from epi_ml.calibration import latest_calibrations
    from epi_ml.channels import GROUP_III
    from epi_ml.models.baselines import residual_frame

    calibrations = {t: latest_calibrations(history, t, frozen_at) for t in examples["tool"].unique()}
    r = np.zeros((examples.height, 2))
    for i, row in enumerate(examples.iter_rows(named=True)):
        cells = [c for c in GROUP_III if (row.get(f"open_{c}_s") or 0) > 0]
        temps = {c: row.get(f"{c}_T_mean") for c in cells}
        try:
            p = predict_layer(row["material"], temps, row["growth_s"], calibrations[row["tool"]],
                              substrate_c=row.get("sub_pyro_mean"))  # fmt: skip
        except (ValueError, TypeError):
            continue
        r[i, 0] = np.log(p.thickness_nm / row["pred_thickness_nm"])
        if p.composition is not None and row["pred_composition"] is not None:
            r[i, 1] = p.composition - row["pred_composition"]
    return residual_frame(examples, r, np.tile(half, (examples.height, 1)))


def logged_time_physics(examples: pl.DataFrame, history: pl.DataFrame, half: np.ndarray) -> pl.DataFrame:
    """The physics baseline (calibration in force) with the shutter times as logged, where the
    features use the heat load's: residuals against the features' baseline."""
    from epi_ml.baseline import predict_layer
    from epi_ml.calibration import latest_calibrations
    from epi_ml.channels import GROUP_III
    from epi_ml.models.baselines import residual_frame

    r = np.zeros((examples.height, 2))
    for i, row in enumerate(examples.iter_rows(named=True)):
        cells = [c for c in GROUP_III if (row.get(f"open_{c}_s") or 0) > 0]
        try:
            p = predict_layer(row["material"], {c: row.get(f"{c}_T_mean") for c in cells},
                              max(row.get(f"open_{c}_s") or 0 for c in cells),
                              latest_calibrations(history, row["tool"], row["start"]),
                              substrate_c=row.get("sub_pyro_mean"))  # fmt: skip
        except (ValueError, TypeError):
            continue
        r[i, 0] = np.log(p.thickness_nm / row["pred_thickness_nm"])
        if p.composition is not None and row["pred_composition"] is not None:
            r[i, 1] = p.composition - row["pred_composition"]
    return residual_frame(examples, r, np.tile(half, (examples.height, 1)))


def xrd_itself(examples: pl.DataFrame) -> dict[str, Any]:
    """The measurement against the truth: the floor no model of the measurement can pass."""
    rows = examples.filter(pl.col("xrd_thickness_nm").is_not_null() & pl.col("true_thickness_nm").is_not_null())
    rel = (rows["xrd_thickness_nm"] / rows["true_thickness_nm"] - 1).to_numpy()
    comp = examples.filter(pl.col("xrd_composition").is_not_null() & pl.col("true_composition").is_not_null())
    err_x = (comp["xrd_composition"] - comp["true_composition"]).to_numpy()
    return {"n": rows.height, "mape_pct": float(np.mean(np.abs(rel)) * 100),
            "rmse_pct": float(np.sqrt(np.mean(rel**2)) * 100), "x_mae": float(np.mean(np.abs(err_x)))}  # fmt: skip


def coverage_noise(model: Any, pool: tuple[pl.DataFrame, Any], test: tuple[pl.DataFrame, Any],
                   draws: int = 1000) -> dict[str, dict[str, float]]:  # fmt: skip
    """Per target: the hybrid's (as grown) coverage on the test and its 95 % intervals when whole
    calibration epochs are resampled (epi_ml.models.conformal.grouped_bootstrap): of the test's
    epochs only, and of the test's and the conformal calibration's (what another draw of both
    could have read). Layers of an epoch share its calibration's error: not independent draws."""
    from epi_ml.models.conformal import calibrate_normalized, grouped_bootstrap, interval_scale
    from epi_ml.models.data import TARGETS

    (pool_x, pool_d), (test_x, test_d) = pool, test
    (m_p, s_p), (m_t, s_t) = model.residuals(pool_d), model.residuals(test_d)
    c, out = model.conformal, {}
    for i, target in enumerate(TARGETS):
        known_p, known_t = np.isfinite(pool_d.targets[:, i]), np.isfinite(test_d.targets[:, i])
        if known_t.sum() == 0:
            continue
        y_p, mp, sp = pool_d.targets[known_p, i], m_p[known_p, i], s_p[known_p, i]
        y_t, mt, st = test_d.targets[known_t, i], m_t[known_t, i], s_t[known_t, i]
        g_p = pool_x.get_column("epoch").to_numpy()[known_p]
        g_t = test_x.get_column("epoch").to_numpy()[known_t]

        def hits(q: float, floor: float, rows: np.ndarray) -> np.ndarray:
            return np.abs(y_t[rows] - mt[rows]) <= q * interval_scale(st[rows], floor, c.score)  # noqa: B023

        q, floor = c.quantile["in_situ"][target], c.floor["in_situ"][target]
        every = np.arange(len(y_t))
        test_only = grouped_bootstrap(lambda rows: hits(q, floor, rows).mean(), g_t, draws)  # noqa: B023
        keys_t = np.unique(g_t)
        by_epoch = [np.flatnonzero(g_t == k) for k in keys_t]
        rng = np.random.default_rng(1)

        def both(rows: np.ndarray) -> float:
            q_b, floor_b = calibrate_normalized(y_p[rows], mp[rows], sp[rows], c.coverage, c.score)  # noqa: B023
            picked = np.concatenate([by_epoch[k] for k in rng.integers(0, len(keys_t), len(keys_t))])  # noqa: B023
            return float(hits(q_b, floor_b, picked).mean()) if np.isfinite(q_b) else np.nan  # noqa: B023

        out[target] = {"coverage": float(hits(q, floor, every).mean()), "epochs": len(keys_t),
                       "calibration_epochs": len(np.unique(g_p)), "test_epochs_95": test_only,
                       "test_and_calibration_epochs_95": grouped_bootstrap(both, g_p, draws)}  # fmt: skip
    return out


def coverage_by_block(model: Any, test: pl.DataFrame, in_situ: Any, began: datetime) -> list[str]:
    """The hybrid's (as grown) coverage per BLOCK_WEEKS weeks of the test: how far a test as short
    as one block moves its coverage."""
    from epi_ml.models.metrics import evaluate

    weeks = ((test.get_column("start") - began) / timedelta(weeks=1)).cast(pl.Int64).to_numpy() + 1
    blocks = (weeks - TRAIN_WEEKS - 1) // BLOCK_WEEKS
    lines = ["| weeks | layers | epochs | thickness coverage | ternary layers | composition coverage |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for b in np.unique(blocks):
        rows = np.flatnonzero(blocks == b)
        part = test[rows]
        m = evaluate(part, model.predict(part, in_situ.take(rows)))["overall"]
        first, last = int(weeks[rows].min()), int(weeks[rows].max())
        lines.append(f"| {first}-{last} | {m['thickness']['n']} | {part['epoch'].n_unique()} | "
                     f"{m['thickness']['coverage']:.1%} | {m['composition'].get('n', 0)} | "
                     f"{m['composition'].get('coverage', float('nan')):.1%} |")  # fmt: skip
    return [*lines, ""]


def retrained_section(examples: pl.DataFrame, traces: pl.DataFrame, history: pl.DataFrame, began: datetime,
                      last_week: int, trials: int, device: str,
                      stale_half_width: np.ndarray) -> tuple[list[str], dict[str, Any]]:  # fmt: skip
    """The later weeks as the product serves them: before each BLOCK_WEEKS-week block the models
    are fit again on every measured layer grown before it (the retrain sensor asks for a new
    candidate after 50 new measured layers, a few days of runs) and tested on the block: a
    rolling forecasting origin (Hyndman & Athanasopoulos, "Forecasting: Principles and Practice",
    3rd ed., 2021, §5.10). Same seeds, search and code as the fixed split above; the stale
    physics' intervals are the fixed split's (`stale_half_width`)."""
    from epi_ml.models.baselines import GradientBoosting, PhysicsBaseline
    from epi_ml.models.conformal import grouped_bootstrap
    from epi_ml.models.data import split_by_epoch, traces_for
    from epi_ml.models.metrics import evaluate, predictions_table
    from epi_ml.models.train import encode_all, fit_growth_model

    parts: dict[str, list[pl.DataFrame]] = {"test": [], "physics": [], "gbm": [], "hybrid": []}
    lines = ["| test weeks | fit on weeks | fit layers | test layers | test epochs | hybrid MAPE % | "
             "thickness coverage | composition coverage |", "|---|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for first in range(TRAIN_WEEKS + 1, last_week + 1, BLOCK_WEEKS):
        origin = began + timedelta(weeks=first - 1)
        fit = examples.filter(pl.col("start") < origin)
        block = examples.filter(pl.col("start").is_between(origin, origin + timedelta(weeks=BLOCK_WEEKS), "left"))
        if block.is_empty():
            continue
        result = fit_growth_model(fit, traces, seed=0, device=device, search_trials=trials, search_timeout_s=900)
        split = split_by_epoch(fit)
        hybrid = result.model.predict(block, encode_all(result.model.spec, block, traces_for(block, traces))[0])
        for name, frame in (("test", block), ("hybrid", hybrid), ("physics", PhysicsBaseline.fit(fit, split).predict(block)),
                            ("gbm", GradientBoosting.fit(fit, split).predict(block))):
            parts[name].append(frame)
        m = evaluate(block, hybrid)["overall"]
        last = min(first + BLOCK_WEEKS - 1, last_week)
        lines.append(f"| {first}-{last} | 1-{first - 1} | {fit.height} | {block.height} | {block['epoch'].n_unique()} | "
                     f"{m['thickness']['mape_pct']:.2f} | {m['thickness']['coverage']:.1%} | "
                     f"{m['composition']['coverage']:.1%} |")  # fmt: skip
    test = pl.concat(parts["test"])
    m = {"physics, calibration in force": evaluate(test, pl.concat(parts["physics"])),
         "physics, calibration frozen at week 2 (stale)": evaluate(
             test, stale_physics(test, history, began + timedelta(weeks=2), stale_half_width)),
         "gradient boosting (scikit-learn), refit per block": evaluate(test, pl.concat(parts["gbm"])),
         "hybrid PyTorch, as grown, refit per block": evaluate(test, pl.concat(parts["hybrid"], how="diagonal_relaxed"))}  # fmt: skip
    xrd = xrd_itself(test)
    table = predictions_table(test, pl.concat(parts["hybrid"], how="diagonal_relaxed"))
    epochs = table.get_column("epoch").to_numpy()
    intervals = {}
    columns = {"thickness": ("xrd_thickness_nm", "thickness_lower_nm", "thickness_upper_nm"),
               "composition": ("xrd_composition", "composition_lower", "composition_upper")}  # fmt: skip
    for target, names in columns.items():
        rows = table.select(names).to_numpy().astype(float)
        known = np.isfinite(rows[:, 0])
        hit = (rows[:, 0] >= rows[:, 1]) & (rows[:, 0] <= rows[:, 2])
        idx = np.flatnonzero(known)
        intervals[target] = grouped_bootstrap(lambda r: hit[idx[r]].mean(), epochs[idx], 1000)  # noqa: B023
    h = m["hybrid PyTorch, as grown, refit per block"]["overall"]
    ht = h["thickness_vs_truth"]
    stale = m["physics, calibration frozen at week 2 (stale)"]["overall"]["thickness"]
    boost = m["gradient boosting (scikit-learn), refit per block"]["overall"]["thickness"]
    ratio = ht["mape_pct"] / xrd["mape_pct"]
    band = f"{COVERAGE_BAND[0]:.0%}-{COVERAGE_BAND[1]:.0%}"
    checks = [
        (f"hybrid thickness error vs truth {ht['mape_pct']:.2f} % = {ratio:.2f}x the XRD's own "
         f"{xrd['mape_pct']:.2f} % (target <= {TARGET_RATIO_XRD}x)", ratio <= TARGET_RATIO_XRD),
        (f"{stale['mape_pct'] / h['thickness']['mape_pct']:.1f}x better than physics with the calibration frozen at "
         f"week 2 (target >= {TARGET_VS_STALE}x)", stale["mape_pct"] / h["thickness"]["mape_pct"] >= TARGET_VS_STALE),
        (f"better than gradient boosting refit the same way: {h['thickness']['mape_pct']:.2f} % vs "
         f"{boost['mape_pct']:.2f} %", h["thickness"]["mape_pct"] < boost["mape_pct"]),
        *((f"90 % interval coverage of {target} {h[target]['coverage']:.1%} (target {band}; 95 % epoch-bootstrap "
           f"interval {intervals[target][0]:.0%}-{intervals[target][1]:.0%}, {len(np.unique(epochs))} epochs)",
           COVERAGE_BAND[0] <= h[target]["coverage"] <= COVERAGE_BAND[1]) for target in ("thickness", "composition")),
    ]  # fmt: skip
    out = [f"### later weeks ({TRAIN_WEEKS + 1}-{last_week}), the models refit before every {BLOCK_WEEKS} weeks (as served)",
           "", *lines, "", *HEADER,
           f"| XRD measurement vs truth (its noise) | {xrd['n']} | | | | {xrd['mape_pct']:.2f} | {xrd['x_mae']:.4f} | | | | |",
           *(row_of(name, metrics) for name, metrics in m.items()), "",
           *(f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in checks), ""]  # fmt: skip
    return out, {"overall": {k: v["overall"] for k, v in m.items()}, "checks": [ok for _, ok in checks]}


def noise_text(n: dict[str, Any]) -> str:
    a, b = n["test_epochs_95"], n["test_and_calibration_epochs_95"]
    return (f"; its layers from {n['epochs']} calibration epochs: 95 % epoch-bootstrap interval {a[0]:.0%}-{a[1]:.0%}, "
            f"{b[0]:.0%}-{b[1]:.0%} with the {n['calibration_epochs']} conformal epochs resampled too")  # fmt: skip


def row_of(name: str, m: dict[str, Any]) -> str:
    t, c = m["overall"]["thickness"], m["overall"]["composition"]
    tt = m["overall"].get("thickness_vs_truth", {})
    return (
        f"| {name} | {t['n']} | {t['mae']:.2f} | {t['rmse']:.2f} | {t['mape_pct']:.2f} | "
        f"{tt.get('mape_pct', float('nan')):.2f} | {c.get('mae', float('nan')):.4f} | "
        f"{c.get('rmse', float('nan')):.4f} | {c.get('mape_pct', float('nan')):.2f} | "
        f"{t['coverage']:.3f} | {c.get('coverage', float('nan')):.3f} |"
    )


HEADER = [
    "| model | layers | thk MAE nm | thk RMSE nm | thk MAPE % | thk MAPE vs truth % | x MAE | x RMSE | "
    "x MAPE % | thk 90 % coverage | x 90 % coverage |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def stuck_section(label: str, campaign: tuple[dict[str, Any], pl.DataFrame], m: dict[str, Any], result: Any,
                  physics: Any, test: pl.DataFrame, traces: pl.DataFrame, history: pl.DataFrame,
                  began: datetime) -> list[str]:
    """The measured layers of the runs quarantined for a stuck shutter: on their own, and with the
    test's layers (what the test would read if those runs had not been held back)."""
    from epi_ml.models.data import traces_for
    from epi_ml.models.metrics import evaluate
    from epi_ml.models.train import encode_all

    c, held = campaign
    lines = [f"Quarantined at ingest: {c['quarantined']} runs, {c['stuck_runs']} of them for a stuck shutter "
             f"(`stuck_shutter`, ERROR); their {held.height} measured layers are in no training set and not in "
             "the test above."]  # fmt: skip
    if held.is_empty():
        return [*lines, ""]
    in_situ, _ = encode_all(result.model.spec, held, traces_for(held, traces))
    rows = {
        "physics, logged shutter times": evaluate(held, logged_time_physics(held, history, physics.half_width)),
        "physics, heat-load shutter times (the features)": evaluate(held, physics.predict(held)),
        "hybrid PyTorch, as grown": evaluate(held, result.model.predict(held, in_situ)),
    }
    both = pl.concat([test, held], how="diagonal_relaxed")
    in_situ_both, _ = encode_all(result.model.spec, both, traces_for(both, traces))
    rows["test + these layers: hybrid PyTorch, as grown"] = evaluate(both, result.model.predict(both, in_situ_both))
    xrd = xrd_itself(held)
    lines += ["", f"#### layers of the runs quarantined for a stuck shutter ({label})", "", *HEADER,
              f"| XRD measurement vs truth (its noise) | {xrd['n']} | | | | {xrd['mape_pct']:.2f} | {xrd['x_mae']:.4f} | | | | |"]  # fmt: skip
    lines += [row_of(name, metrics) for name, metrics in rows.items()]
    xrd_both = xrd_itself(both)
    hb = rows["test + these layers: hybrid PyTorch, as grown"]["overall"]
    lines += ["", f"- with them the hybrid's error vs truth would be {hb['thickness_vs_truth']['mape_pct']:.2f} % = "
              f"{hb['thickness_vs_truth']['mape_pct'] / xrd_both['mape_pct']:.2f}x the XRD's own "
              f"{xrd_both['mape_pct']:.2f} %, coverage {hb['thickness']['coverage']:.1%}", ""]  # fmt: skip
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--runs", type=int, default=450, help="training campaign (450: 17 weeks)")
    parser.add_argument("--unseen-runs", type=int, default=300)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cache", type=Path, default=None, help="keep / reuse the built campaigns here")
    args = parser.parse_args()

    import torch

    from epi_ml.models.baselines import GradientBoosting, PhysicsBaseline
    from epi_ml.models.data import select_examples, split_by_epoch, traces_for
    from epi_ml.models.metrics import evaluate
    from epi_ml.models.train import encode_all, fit_growth_model

    with tempfile.TemporaryDirectory() as tmp:
        train_c = cached_campaign(args.cache, Path(tmp) / "train", args.runs, seed=1, tools=2)
        unseen_c = cached_campaign(args.cache, Path(tmp) / "unseen", args.unseen_runs, seed=2, tools=3)

    start = datetime.fromisoformat(train_c["start"]).replace(tzinfo=UTC)
    cutoff = start + timedelta(weeks=TRAIN_WEEKS)
    all_examples = select_examples(train_c["training_set"])
    fit_examples = all_examples.filter(pl.col("start") < cutoff)
    later = all_examples.filter(pl.col("start") >= cutoff)
    last_week = TRAIN_WEEKS + int((later["start"].max() - cutoff) / timedelta(weeks=1)) + 1
    unseen = select_examples(unseen_c["training_set"])
    traces = pl.concat([train_c["traces"], unseen_c["traces"], train_c["stuck_traces"], unseen_c["stuck_traces"]])

    started = time.perf_counter()
    result = fit_growth_model(fit_examples, train_c["traces"], seed=0, device=args.device,
                              search_trials=args.trials, search_timeout_s=900)  # fmt: skip
    fit_s = time.perf_counter() - started
    split = split_by_epoch(fit_examples)
    pool = np.concatenate([split.validation, split.calibration])  # what the intervals were calibrated on
    pool_in_situ = encode_all(result.model.spec, fit_examples[pool], traces_for(fit_examples[pool], train_c["traces"]))[0]
    physics = PhysicsBaseline.fit(fit_examples, split)
    started = time.perf_counter()
    gbm = GradientBoosting.fit(fit_examples, split)
    gbm_s = time.perf_counter() - started

    sections, verdicts, results = [], [], {}
    unseen_start = datetime.fromisoformat(unseen_c["start"]).replace(tzinfo=UTC)
    stuck_train = select_examples(train_c["stuck_set"])
    cases = (
        (f"later weeks ({TRAIN_WEEKS + 1}-{last_week}) of the training campaign", later, train_c["history"], start, (2, TRAIN_WEEKS),
         (train_c, stuck_train.filter(pl.col("start") >= cutoff))),
        ("unseen campaign (seed 2, 3 tools)", unseen, unseen_c["history"], unseen_start, (1,),
         (unseen_c, select_examples(unseen_c["stuck_set"]))),
    )
    for label, test, history, began, frozen_weeks, campaign in cases:
        in_situ, recipe = encode_all(result.model.spec, test, traces_for(test, traces))
        m = {"physics, calibration in force": evaluate(test, physics.predict(test))}
        for weeks in frozen_weeks:
            m[f"physics, calibration frozen at week {weeks} (stale)"] = evaluate(
                test, stale_physics(test, history, began + timedelta(weeks=weeks), physics.half_width)
            )
        m |= {
            "gradient boosting (scikit-learn)": evaluate(test, gbm.predict(test)),
            "hybrid PyTorch, from the recipe (no sensors)": evaluate(test, result.model.predict(test, recipe)),
            "hybrid PyTorch, as grown (features + traces)": evaluate(test, result.model.predict(test, in_situ)),
        }
        xrd = xrd_itself(test)
        results[label] = {k: v["overall"] for k, v in m.items()} | {"xrd": xrd}
        lines = [f"### {label}", "", *HEADER,
                 f"| XRD measurement vs truth (its noise) | {xrd['n']} | | | | {xrd['mape_pct']:.2f} | "
                 f"{xrd['x_mae']:.4f} | | | | |"]  # fmt: skip
        lines += [row_of(name, metrics) for name, metrics in m.items()]
        hybrid = m["hybrid PyTorch, as grown (features + traces)"]["overall"]
        noise = coverage_noise(result.model, (fit_examples[pool], pool_in_situ), (test, in_situ))
        results[label]["coverage_noise"] = noise
        stale_name = f"physics, calibration frozen at week {frozen_weeks[0]} (stale)"
        stale = m[stale_name]["overall"]["thickness"]
        stale_truth = m[stale_name]["overall"]["thickness_vs_truth"]
        inforce_truth = m["physics, calibration in force"]["overall"]["thickness_vs_truth"]
        inforce = m["physics, calibration in force"]["overall"]["thickness"]
        boost = m["gradient boosting (scikit-learn)"]["overall"]["thickness"]
        h, ht = hybrid["thickness"], hybrid["thickness_vs_truth"]
        ratio = ht["mape_pct"] / xrd["mape_pct"]
        checks = [
            (f"hybrid thickness error vs truth {ht['mape_pct']:.2f} % = {ratio:.2f}x the XRD's own "
             f"{xrd['mape_pct']:.2f} % (target <= {TARGET_RATIO_XRD}x)", ratio <= TARGET_RATIO_XRD),
            (f"{stale['mape_pct'] / h['mape_pct']:.1f}x better than physics with the calibration frozen at "
             f"week {frozen_weeks[0]} ({stale['mape_pct']:.2f} % -> {h['mape_pct']:.2f} % vs XRD, "
             f"{stale_truth['mape_pct'] / ht['mape_pct']:.1f}x vs truth; target >= {TARGET_VS_STALE}x)",
             stale["mape_pct"] / h["mape_pct"] >= TARGET_VS_STALE),
            (f"(for reference) {inforce['mape_pct'] / h['mape_pct']:.1f}x better than physics with the "
             f"calibration in force vs XRD, {inforce_truth['mape_pct'] / ht['mape_pct']:.1f}x vs truth "
             "(the XRD noise caps the ratio vs XRD)", True),
            (f"better than gradient boosting: {h['mape_pct']:.2f} % vs {boost['mape_pct']:.2f} %",
             h["mape_pct"] < boost["mape_pct"]),
            (f"90 % interval coverage of thickness {h['coverage']:.1%} (target {COVERAGE_BAND[0]:.0%}-{COVERAGE_BAND[1]:.0%}"
             f"{noise_text(noise['thickness'])})",
             COVERAGE_BAND[0] <= h["coverage"] <= COVERAGE_BAND[1]),
            (f"90 % interval coverage of composition {hybrid['composition']['coverage']:.1%} "
             f"({hybrid['composition']['n']} ternary layers; target {COVERAGE_BAND[0]:.0%}-{COVERAGE_BAND[1]:.0%}"
             f"{noise_text(noise['composition'])})",
             COVERAGE_BAND[0] <= hybrid["composition"]["coverage"] <= COVERAGE_BAND[1]),
        ]  # fmt: skip
        lines += ["", *(f"- {'met' if ok else 'NOT met'}: {text}" if not text.startswith("(") else f"- {text}"
                        for text, ok in checks), ""]  # fmt: skip
        if test is later:
            lines += [f"Coverage of the hybrid (as grown) per {BLOCK_WEEKS} weeks of this test:", "",
                      *coverage_by_block(result.model, test, in_situ, began)]  # fmt: skip
        # per tool: where a model gains or loses
        grown = m["hybrid PyTorch, as grown (features + traces)"]["slices"]["tool"]
        lines += ["| tool | layers | physics MAPE % | GBM MAPE % | hybrid MAPE % | hybrid vs truth % | "
                  "hybrid coverage |", "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for tool, sl in grown.items():
            ph = m["physics, calibration in force"]["slices"]["tool"][tool]["thickness"]
            gb = m["gradient boosting (scikit-learn)"]["slices"]["tool"][tool]["thickness"]
            t = sl["thickness"]
            lines.append(f"| {tool} | {t['n']} | {ph['mape_pct']:.2f} | {gb['mape_pct']:.2f} | "
                         f"{t['mape_pct']:.2f} | {sl['thickness_vs_truth']['mape_pct']:.2f} | {t['coverage']:.3f} |")  # fmt: skip
        lines.append("")
        lines += stuck_section(label, campaign, m, result, physics, test, traces, history, began)
        verdicts += [ok for _, ok in checks]
        sections.append("\n".join(lines))

    retrained, results["retrained"] = retrained_section(
        all_examples, train_c["traces"], train_c["history"], start, last_week, args.trials, args.device,
        physics.half_width,
    )
    sections.insert(1, "\n".join(retrained))

    rep = result.report
    device = result.device
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    text = "\n".join(
        [
            "## Growth models (bench_models)",
            "",
            f"Training campaign: {train_c['runs']} runs on {', '.join(train_c['tools'])} (seed 1, "
            f"{train_c['start']} .. {train_c['end']}), simulated, ingested and featured in "
            f"{train_c['seconds']:.0f} s; the models fit on weeks 1-{TRAIN_WEEKS} ({fit_examples.height} "
            f"measured layers: {split.sizes()} by calibration epoch) and are tested on the later weeks "
            f"({later.height} layers). Unseen campaign: {unseen_c['runs']} runs on "
            f"{', '.join(unseen_c['tools'])} (seed 2: other tools), {unseen.height} measured layers, "
            f"{unseen_c['seconds']:.0f} s to build. Errors against XRD unless said 'vs truth'; MAPE of x "
            "in % of x. A stale calibration is the one in force at the end of week N, used for every "
            f"later run (a lab that stopped recalibrating); at week {TRAIN_WEEKS} it is 0-{last_week - TRAIN_WEEKS} "
            f"weeks old for the test runs, at week 2 {TRAIN_WEEKS - 2}-{last_week - 2} weeks (the MBE2 refill "
            "in week 6 is after it). The twin's "
            "calibration scans are noisy enough that a few weeks of depletion hardly show; months and "
            "a refill do.",
            "",
            *sections,
            "",
            "### Training cost",
            "",
            "| device | ensemble | epochs (best, per member) | ensemble training | samples/s | search | "
            "gradient boosting |",
            "|---|---:|---|---:|---:|---|---:|",
            f"| {device} | {len(result.model.members)} members | {rep.epochs} | {rep.seconds:.1f} s | "
            f"{rep.samples_per_s:,.0f} | {result.search.get('trials', 0)} trials "
            f"({result.search.get('pruned', 0)} pruned) in {result.search.get('seconds', 0):.0f} s | "
            f"{gbm_s:.1f} s |",
            "",
            f"Whole fit (search + ensemble + conformal): {fit_s:.0f} s. GPU: "
            + (f"{gpu}." if gpu else "none on this machine, and no GPU machine was lent to this "
               "task, so there are no GPU numbers yet (the same code runs on CUDA with bfloat16 "
               "autocast: `--device cuda`)."),
        ]
    )
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_models.md").write_text(text + "\n")
    (args.out / "bench_models.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0  # the targets are reported (met / NOT met), not asserted: a bench, not a test


if __name__ == "__main__":
    raise SystemExit(main())
