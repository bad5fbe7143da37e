"""RHEED specular-spot intensity during a run.

While a layer grows, the specular intensity oscillates once per monolayer (a maximum at every
completed layer, a minimum at half coverage) and the oscillation is damped as the step density
settles (faster at higher temperature, where growth turns to step flow). The mean intensity drops
as the surface roughens at growth start and recovers once the shutter closes, with a time constant
of seconds to tens of seconds. Oxide on the wafer keeps the pattern dim until it desorbs during
the deox; an As-deficient (Ga-rich) surface turns dim; a rotating wafer modulates the spot with the
azimuth and washes out most of the oscillation. The phase follows the integrated deposit, so
transients and rate changes show in the oscillation period exactly as they do on a real screen.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from epi_ml.twin.cells import first_order_lag
from epi_ml.twin.tools import ToolSpec

Array = NDArray[np.float64]

OSCILLATION_DEPTH = 0.5  # fraction of the intensity lost at half coverage on a smooth surface
ROUGHENING = 0.3  # steady drop of the mean intensity during growth
GA_RICH_DROP = 0.75
ROTATING_OSCILLATION = 0.25  # what is left of the oscillation on a rotating wafer
AZIMUTH_MODULATION = 0.3


def oxide_coverage(t: Array, surface_c: Array) -> Array:
    """Native oxide left on the wafer: desorbs above ~580 °C, within minutes at 620 °C."""
    dt = float(t[1] - t[0]) if len(t) > 1 else 1.0
    rate = np.exp((surface_c - 610.0) / 8.0) / 120.0  # 1/s
    return np.exp(-np.cumsum(rate) * dt)


def damping_ml(spec: ToolSpec, surface_c: Array | float) -> Array:
    return np.clip(
        spec.rheed_damping_ml * np.exp(-(np.asarray(surface_c) - 580.0) / 35.0), 3.0, 80.0
    )


def recovery_s(spec: ToolSpec, surface_c: Array | float) -> Array:
    return np.clip(
        spec.rheed_recovery_s * np.exp(-(np.asarray(surface_c) - 580.0) / 40.0), 3.0, 150.0
    )


def _segments(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def rheed_intensity(
    spec: ToolSpec,
    t: Array,
    growth_ml_s: Array,
    surface_c: Array,
    rpm: Array,
    ga_rich: NDArray[np.bool_],
    spikes: Array,
    rng: np.random.Generator,
) -> Array:
    """Specular intensity (counts) on the uniform grid `t`."""
    n = len(t)
    dt = float(t[1] - t[0]) if n > 1 else 1.0
    growing = growth_ml_s > 1e-4
    theta = np.cumsum(growth_ml_s) * dt  # monolayers deposited so far

    roughness = np.zeros(n)
    oscillation = np.zeros(n)
    level = 0.0  # roughness when the current interval begins
    cursor = 0
    for i0, i1 in _segments(growing):
        # recovery since the last growth
        if i0 > cursor:
            tau = recovery_s(spec, surface_c[cursor:i0])
            roughness[cursor:i0] = level * np.exp(-(t[cursor:i0] - t[cursor]) / tau)
            level = float(roughness[i0 - 1])
        deposited = theta[i0:i1] - theta[i0]
        smooth = 1.0 - level / max(ROUGHENING, 1e-9)
        roughness[i0:i1] = level + (ROUGHENING - level) * (1 - np.exp(-deposited / 2.0))
        amplitude = (
            OSCILLATION_DEPTH
            * max(smooth, 0.1)
            * np.exp(-deposited / damping_ml(spec, surface_c[i0:i1]))
        )
        oscillation[i0:i1] = amplitude * (1 - np.cos(2 * np.pi * deposited)) / 2
        level = float(roughness[i1 - 1])
        cursor = i1
    if cursor < n:
        tau = recovery_s(spec, surface_c[cursor:])
        roughness[cursor:] = level * np.exp(-(t[cursor:] - t[cursor]) / tau)

    rotating = rpm > 0.5
    oscillation = np.where(rotating, oscillation * ROTATING_OSCILLATION, oscillation)
    ga_dim = first_order_lag(ga_rich.astype(float), 5.0, dt) * GA_RICH_DROP
    debye_waller = np.exp(-(surface_c - 500.0) / 900.0)
    oxide = oxide_coverage(t, surface_c)
    spot = spec.rheed_intensity * debye_waller * (1 - 0.7 * oxide) * (1 - ga_dim)
    intensity = spot * np.clip(1 - roughness - oscillation, 0.02, None)
    phase = rng.uniform(0, 2 * np.pi)
    azimuth = 1 + AZIMUTH_MODULATION * np.cos(2 * np.pi * np.cumsum(rpm) * dt / 60.0 + phase)
    intensity = np.where(rotating, intensity * azimuth, intensity)
    intensity = (
        intensity / np.maximum(spikes, 1.0) ** 2
    )  # droplets from a spitting cell scatter the beam
    noise = 1 + rng.normal(0, spec.rheed_noise, n)
    return np.clip(intensity * noise + rng.normal(0, 2.0, n), 0.0, None)
