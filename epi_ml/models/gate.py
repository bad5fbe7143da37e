"""The evaluation gate (TFX Evaluator style): may a candidate become the champion?

    decision = judge(candidate, physics, champion, GateThresholds())

All three are `epi_ml.models.metrics.evaluate` results on the same evaluation layers. The
candidate passes when every check passes:

- value thresholds: thickness MAPE and composition MAE overall at most the limits, and the
  coverage of its 90 % thickness intervals not shown to be outside the stated band: the check
  fails when the 95 % Wilson interval of the coverage measured lies wholly outside it (on 60
  layers a well-calibrated model's coverage is 90 ± 4 %, so the point value alone would refuse
  one in five good candidates);
- better than the physics baseline on thickness (otherwise the model adds nothing);
- not worse than the current champion on any slice (tool, material, calibration epoch) with
  enough layers, beyond a relative tolerance plus a small absolute allowance (slices of a few
  layers are noise; the allowance keeps a tie from failing).

Every check, passed or not, is in the decision with its numbers, so the ledger says why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

COVERAGE_CONFIDENCE_Z = 1.96  # the 95 % Wilson interval of a measured coverage


@dataclass(frozen=True)
class GateThresholds:
    max_thickness_mape_pct: float = 1.5
    max_composition_mae: float = 0.01
    coverage_low: float = 0.85
    coverage_high: float = 0.95
    min_coverage_n: int = 30  # fewer layers cannot tell 0.85 from 0.95
    slice_tolerance: float = 0.10  # relative
    slice_allowance_mape_pct: float = 0.05  # absolute, on thickness MAPE
    slice_allowance_composition: float = 0.0005  # absolute, on composition MAE
    min_slice_n: int = 10


@dataclass
class GateDecision:
    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c["reason"] for c in self.checks]

    @property
    def failures(self) -> list[str]:
        return [c["reason"] for c in self.checks if not c["passed"]]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": self.checks}


def judge(
    candidate: dict[str, Any],
    physics: dict[str, Any],
    champion: dict[str, Any] | None,
    thresholds: GateThresholds | None = None,
) -> GateDecision:
    t = thresholds or GateThresholds()
    checks: list[dict[str, Any]] = []

    def check(name: str, value: float, limit: float, passed: bool, reason: str) -> None:
        checks.append({"check": name, "value": value, "limit": limit, "passed": bool(passed),
                       "reason": f"{'ok' if passed else 'FAIL'}: {reason}"})  # fmt: skip

    thick = candidate["overall"]["thickness"]
    if thick.get("n", 0) == 0:
        check("thickness_measured", 0, 1, False, "no measured thickness in the evaluation layers")
        return GateDecision(False, checks)
    mape = thick["mape_pct"]
    check("thickness_mape_pct", mape, t.max_thickness_mape_pct, mape <= t.max_thickness_mape_pct,
          f"thickness MAPE {mape:.3f} % (limit {t.max_thickness_mape_pct} %) on {thick['n']} layers")
    comp = candidate["overall"]["composition"]
    if comp.get("n", 0):
        check("composition_mae", comp["mae"], t.max_composition_mae, comp["mae"] <= t.max_composition_mae,
              f"composition MAE {comp['mae']:.4f} (limit {t.max_composition_mae}) on {comp['n']} layers")
    cover = thick["coverage"]
    if thick["n"] >= t.min_coverage_n:
        low, high = wilson_interval(cover, thick["n"])
        inside = high >= t.coverage_low and low <= t.coverage_high
        check("thickness_coverage", cover, t.coverage_low, inside,
              f"90 % thickness intervals cover {cover:.1%} of {thick['n']} layers (95 % interval "
              f"{low:.1%}-{high:.1%}; band {t.coverage_low:.0%}-{t.coverage_high:.0%})")
    physics_mape = physics["overall"]["thickness"]["mape_pct"]
    check("beats_physics", mape, physics_mape, mape < physics_mape,
          f"thickness MAPE {mape:.3f} % vs the physics baseline's {physics_mape:.3f} %")
    if champion is not None:
        checks.extend(_slices_vs_champion(candidate, champion, t))
    return GateDecision(all(c["passed"] for c in checks), checks)


def wilson_interval(share: float, n: int, z: float = COVERAGE_CONFIDENCE_Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion `share` measured on `n` trials (Wilson 1927;
    Brown, Cai & DasGupta 2001 recommend it over the normal approximation for small n)."""
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _slices_vs_champion(candidate: dict[str, Any], champion: dict[str, Any], t: GateThresholds) -> list[dict[str, Any]]:
    out = []
    pairs = [("overall", "all", candidate["overall"], champion["overall"])]
    for kind, groups in candidate.get("slices", {}).items():
        for key, metrics in groups.items():
            theirs = champion.get("slices", {}).get(kind, {}).get(key)
            if theirs is not None:
                pairs.append((kind, key, metrics, theirs))
    for kind, key, ours, theirs in pairs:
        for target, metric, allowance in (
            ("thickness", "mape_pct", t.slice_allowance_mape_pct),
            ("composition", "mae", t.slice_allowance_composition),
        ):
            a, b = ours.get(target, {}), theirs.get(target, {})
            if a.get("n", 0) < t.min_slice_n or metric not in a or metric not in b:
                continue
            limit = b[metric] * (1 + t.slice_tolerance) + allowance
            passed = a[metric] <= limit
            out.append({
                "check": f"vs_champion:{kind}={key}:{target}_{metric}",
                "value": a[metric], "limit": limit, "passed": passed,
                "reason": f"{'ok' if passed else 'FAIL'}: {kind} {key}: {target} {metric} "
                          f"{a[metric]:.4g} vs champion {b[metric]:.4g} (limit {limit:.4g}, {a['n']} layers)",
            })  # fmt: skip
    return out


def thresholds_dict(t: GateThresholds) -> dict[str, Any]:
    return asdict(t)
