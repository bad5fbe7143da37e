"""Growth rate from RHEED specular-intensity oscillations (Neave, Joyce, Dobson, Norton 1983).

While a layer grows layer by layer, the specular spot's intensity oscillates once per completed
monolayer: the period is the monolayer time, so the frequency in Hz *is* the growth rate in ML/s,
and times the monolayer thickness of the material (a/2 on (001)) the rate in nm/s. The oscillation
is damped, rides on a mean intensity that drops as the surface roughens at growth start and
recovers after the shutter closes, and a rotating wafer modulates the spot with its azimuth and
washes most of the oscillation out (calibration runs stop the rotation).

The estimate takes the steps RHEED packages take (kSA 400: FFT, damped-sine fit; docs/rheed.md):

1. clean: non-finite samples dropped, time sorted, repeated times averaged;
2. band: rates from 0.05 to 3 ML/s, at least 3 periods in the trace and at least 2.5 samples per
   period (a 5 Hz trace measures up to 2 ML/s);
3. FFT on a uniform grid at the median sample step (linear interpolation): cubic detrend, Hann
   window, 8x zero padding, Gaussian peak interpolation; the peak must stand above the local noise
   floor (a power law fitted around it, so drift's red spectrum does not pass for a peak) at a
   false-alarm probability of 1e-3;
4. damped-sine fit on the original samples (no interpolation error), seeded by the FFT:
   ``I = c0 + c1 u + c2 u^2 + b exp(-beta t) + exp(-gamma t) (a cos 2 pi f t + s sin 2 pi f t)``
   (u: time scaled to [-1, 1]); f, gamma, beta nonlinear, the rest solved linearly at each step
   (variable projection);
5. reject, with the reason, when the peak is not significant, the fit fails or runs to a bound,
   fit and FFT disagree, the sine explains little of the signal, fewer than 3 periods stand above
   the noise, the modulation does not decay (no growth oscillation does: a rotating wafer's
   azimuth), or the rate is uncertain beyond 10 %.

Growth oscillations fade within tens of monolayers, so in a long window they live at its start,
where the Hann window hides them: the first half, quarter, ... of the window are tried in turn,
each at its share of the false-alarm probability. When the wafer rotates (`rotation_rpm`), the
analysis runs on log intensity (the azimuthal modulation multiplies the spot) with the rotation's
harmonics fitted out and kept out of the search.

Bad data never raise: an estimate with `oscillating=False` says why. Misuse (arrays of different
lengths, an unknown method) raises ValueError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from epi_ml.physics import GAAS_MONOLAYER_NM, monolayer_thickness_nm
from epi_ml.readers.rheed import RheedTrace

Array = NDArray[np.float64]
Method = Literal["damped_sine", "fft"]

# what is plausible and what is needed
MIN_RATE_ML_S = 0.05  # slower growth is not calibrated by RHEED (a period over 20 s)
MAX_RATE_ML_S = 3.0  # faster than any III-V MBE growth
MIN_PERIODS = 3.0  # fewer periods cannot tell an oscillation from a wiggle of the baseline
LOW_CONFIDENCE_PERIODS = 5.0  # below this a rate comes with a warning and a stricter R²
MIN_SAMPLES = 16
SAMPLES_PER_PERIOD = 2.5  # the fastest rate measured: sample rate / 2.5 (Nyquist is 2)
FALSE_ALARM = 1e-3  # chance that noise alone gives a peak as high as the one accepted
MIN_OSCILLATION_R2 = 0.15  # share of the detrended signal the damped sine must explain...
FEW_PERIODS_R2 = 0.5  # ...and below LOW_CONFIDENCE_PERIODS periods (drift can look like 3)
MAX_RELATIVE_UNCERTAINTY = 0.1  # a rate less certain than 10 % is not worth a number
MAX_FIT_FFT_DISAGREEMENT = 0.05  # relative; plus a third of the FFT's resolution (1/duration)
# spectrum
ZERO_PADDING = 8
PEAKS_TRIED = 5  # the strongest spectral peaks, each weighed against its own noise floor
HANN_RESOLUTION = 2.0  # a Hann-windowed spectrum's independent frequencies: every 2/duration
NOISE_BINS = 4  # independent frequencies the noise floor is estimated from, at least
MAX_FLOOR_SLOPE = 4.0  # steepest local noise spectrum believed (log power per log frequency)
EULER_GAMMA = 0.5772156649  # E[log X] = log(mean) - gamma for an exponential X
# fit
FREQUENCY_SEARCH = 0.25  # the fit's frequency may move this far (relative) from the FFT's
# rotation and other steady modulations
ROTATING_RPM = 0.5  # below this the wafer is taken as standing still
ROTATION_HARMONICS = 4  # azimuthal modulation of a (001) surface: 1-, 2- and 4-fold terms
# a modulation that keeps its amplitude over many periods is no growth oscillation (those fade
# within tens of monolayers; the twin's slowest damping is 80 ML): a rotating wafer's azimuth, a
# mechanical or electrical beat. Judged over at least UNDAMPED_PERIODS periods.
UNDAMPED_PERIODS = 20.0
MAX_DAMPING_PERIODS = 200.0  # envelope e-folding (in periods) beyond which it is "undamped"
# long windows
LEADING_SPANS = 6  # the window, its first half, quarter, ... (at most this many tries)
LEADING_MIN_S = 10.0  # shortest leading part tried


@dataclass(frozen=True)
class RheedEstimate:
    """What the oscillations say. `oscillating=False`: no rate; `reason` says why."""

    oscillating: bool
    rate_ml_s: float | None = None
    rate_nm_s: float | None = None
    period_s: float | None = None
    # 1 sigma. damped_sine: the fit's covariance (residual variance, inflated for residual
    # autocorrelation) combined with the excess spread between fits of the two halves of the
    # visible oscillation (the rate drifting within the window, e.g. a shutter transient).
    # fft: the Cramer-Rao bound of the peak combined with the spread of two interpolations.
    uncertainty_ml_s: float | None = None
    n_periods: float | None = None  # periods before the envelope sinks into the noise
    method: str | None = None  # "damped_sine" | "fft"
    quality: dict[str, float] = field(default_factory=dict)  # snr, r2, fft_rate_ml_s, ...
    reason: str = ""  # why no oscillation (empty when oscillating)
    # no_data, too_short, flat, undersampled, no_peak, fit_failed, fit_fft_disagree, noise,
    # undamped, few_periods, uncertain
    reason_code: str = ""
    warnings: tuple[str, ...] = ()  # a rate with caveats (few periods, gaps, rotating wafer)
    monolayer_nm: float = GAAS_MONOLAYER_NM
    n_samples: int = 0  # samples analysed
    duration_s: float = 0.0  # span analysed (a leading part of a long window: see warnings)

    @property
    def rate_um_h(self) -> float | None:
        return None if self.rate_nm_s is None else self.rate_nm_s * 3.6

    @property
    def uncertainty_nm_s(self) -> float | None:
        if self.uncertainty_ml_s is None:
            return None
        return self.uncertainty_ml_s * self.monolayer_nm

    def to_dict(self) -> dict[str, Any]:
        return {
            "oscillating": self.oscillating,
            "rate_ml_s": self.rate_ml_s,
            "rate_nm_s": self.rate_nm_s,
            "rate_um_h": self.rate_um_h,
            "period_s": self.period_s,
            "uncertainty_ml_s": self.uncertainty_ml_s,
            "uncertainty_nm_s": self.uncertainty_nm_s,
            "n_periods": self.n_periods,
            "method": self.method,
            "quality": {k: _json_number(v) for k, v in self.quality.items()},
            "reason": self.reason,
            "reason_code": self.reason_code,
            "warnings": list(self.warnings),
            "monolayer_nm": self.monolayer_nm,
            "n_samples": self.n_samples,
            "duration_s": self.duration_s,
        }

    def summary(self) -> str:
        """One line for people: the rate with its uncertainty, or why there is none."""
        if not self.oscillating or self.rate_ml_s is None:
            return f"no oscillation: {self.reason}"
        sigma = self.uncertainty_ml_s or 0.0
        sigma_nm = self.uncertainty_nm_s or 0.0
        return (
            f"{self.rate_ml_s:.4f} ± {sigma:.4f} ML/s = {self.rate_nm_s:.4f} ± {sigma_nm:.4f} "
            f"nm/s = {self.rate_um_h:.3f} µm/h (period {self.period_s:.3f} s, "
            f"{self.n_periods:.1f} periods, {self.method})"
        )


def estimate_growth_rate(
    time_s: ArrayLike,
    intensity: ArrayLike,
    *,
    monolayer_nm: float = GAAS_MONOLAYER_NM,
    min_rate_ml_s: float = MIN_RATE_ML_S,
    max_rate_ml_s: float = MAX_RATE_ML_S,
    min_periods: float = MIN_PERIODS,
    false_alarm: float = FALSE_ALARM,
    max_relative_uncertainty: float = MAX_RELATIVE_UNCERTAINTY,
    rotation_rpm: float | None = None,
    method: Method = "damped_sine",
) -> RheedEstimate:
    """Growth rate from one specular-intensity trace (seconds, any origin; any intensity unit;
    time steps need not be uniform).

    `monolayer_nm`: one monolayer of what grows (rate_nm_s = rate_ml_s x monolayer_nm);
    `min_rate_ml_s`, `max_rate_ml_s`: the band of plausible rates; `min_periods`: periods that
    must stand above the noise; `false_alarm`: accepted chance that noise alone makes the peak;
    `max_relative_uncertainty`: beyond it no rate is given; `rotation_rpm`: the wafer's rotation
    when it turns (without it a short trace of a rotating wafer can give the rotation's
    frequency); `method`: "damped_sine" (default) or "fft" alone (quicker, less exact).
    """
    t_in = np.asarray(time_s, dtype=float)
    y_in = np.asarray(intensity, dtype=float)
    if t_in.ndim != 1 or y_in.ndim != 1 or len(t_in) != len(y_in):
        raise ValueError(
            "time and intensity must be 1-D arrays of the same length; got shapes "
            f"{t_in.shape} and {y_in.shape}"
        )
    if method not in ("damped_sine", "fft"):
        raise ValueError(f"method must be 'damped_sine' or 'fft', not {method!r}")
    if not 0 < min_rate_ml_s < max_rate_ml_s:
        raise ValueError("need 0 < min_rate_ml_s < max_rate_ml_s")
    settings = _Settings(
        min_rate_ml_s, max_rate_ml_s, min_periods, false_alarm, max_relative_uncertainty, method
    )
    context = _Context(monolayer_nm=float(monolayer_nm))
    cleaned = _clean(t_in, y_in, context)
    if isinstance(cleaned, RheedEstimate):
        return cleaned
    t, y = cleaned
    rotation_hz = None
    if rotation_rpm is not None and math.isfinite(rotation_rpm) and rotation_rpm > ROTATING_RPM:
        rotation_hz = rotation_rpm / 60.0
        context.warnings.append(
            f"wafer rotating at {rotation_rpm:.1f} rpm: the oscillation is mostly washed out; "
            "stop the rotation for a RHEED calibration"
        )
    tau = t - t[0]
    spans = _leading_spans(context.duration_s)
    span_settings = replace(settings, false_alarm=false_alarm / len(spans))
    first: RheedEstimate | None = None
    for span in spans:
        keep = tau <= span + 1e-9
        # the azimuthal modulation multiplies the intensity: in its log it adds
        values = np.log(y[keep]) if rotation_hz is not None and np.all(y > 0) else y[keep]
        attempt = _estimate_span(t[keep], values, context.fork(), rotation_hz, span_settings)
        if attempt.oscillating:
            if span < spans[0]:
                attempt = _with_warning(
                    attempt,
                    f"oscillations found in the first {span:.0f} s of the "
                    f"{context.duration_s:.0f} s window: the rate of the layer's start",
                )
            return attempt
        first = first or attempt
        if attempt.reason_code == "undamped" and rotation_hz is None:
            # a steady modulation seen over the long span is there in the shorter ones too,
            # where it has too few periods to tell: it is fitted out like a rotation
            rotation_hz = attempt.quality["fit_rate_ml_s"]
            context.warnings.append(
                f"a steady modulation at {rotation_hz:.4g} Hz (a rotating wafer?) left out"
            )
    assert first is not None  # there is always at least one span
    return first


def growth_rate_in_window(
    sensors: pl.DataFrame,
    start: datetime | str,
    end: datetime | str,
    *,
    channel: str = "RHEED.I",
    material: str = "GaAs",
    x: float | None = None,
    rotation_channel: str = "sub.rpm",
    **options: Any,
) -> RheedEstimate:
    """The rate of the layer grown between `start` and `end` (its shutter-open window; datetimes,
    naive = UTC, or ISO strings) from a canonical long sensor table (time, channel, value).

    The monolayer is that of `material` (with composition `x` for AlGaAs and InGaAs); the wafer's
    rotation is the median of `rotation_channel` in the window (unless `rotation_rpm` is given).
    `options` go to estimate_growth_rate."""
    missing = {"time", "channel", "value"} - set(sensors.columns)
    if missing:
        raise ValueError(f"not a canonical sensor table: no column(s) {sorted(missing)}")
    begin, finish = _utc(start), _utc(end)
    if finish <= begin:
        raise ValueError(f"the window ends ({finish}) before it starts ({begin})")
    if material in ("AlGaAs", "InGaAs") and x is None:
        raise ValueError(f"{material} needs its composition x for its monolayer thickness")
    monolayer = float(monolayer_thickness_nm(material, x or 0.0))
    time_type = sensors.schema["time"]
    origin = pl.lit(begin).cast(time_type)
    inside = sensors.filter(
        (pl.col("time") >= origin) & (pl.col("time") < pl.lit(finish).cast(time_type))
    )
    samples = inside.filter(pl.col("channel") == channel).sort("time")
    seconds = samples.select((pl.col("time") - origin).dt.total_microseconds() / 1e6)
    if "rotation_rpm" not in options:
        rpm = (
            inside.filter(pl.col("channel") == rotation_channel)
            .get_column("value")
            .drop_nulls()
            .drop_nans()
        )
        median = rpm.median() if rpm.len() else None
        options["rotation_rpm"] = float(median) if median is not None else None  # type: ignore
    estimate = estimate_growth_rate(
        seconds.to_series().to_numpy().astype(float),
        samples.get_column("value").to_numpy().astype(float),
        monolayer_nm=monolayer,
        **options,
    )
    if estimate.reason_code == "no_data":
        return replace(
            estimate,
            reason=f"no {channel} samples between {begin.isoformat()} and {finish.isoformat()}",
        )
    return estimate


def estimate_from_export(
    trace: RheedTrace,
    *,
    window: str | None = None,
    start_s: float | None = None,
    end_s: float | None = None,
    **options: Any,
) -> dict[str, RheedEstimate]:
    """One estimate per intensity window of a RHEED export (or of `window` alone), over the
    samples with `start_s <= time_s < end_s` (the export's own seconds). `options` go to
    estimate_growth_rate."""
    windows = trace.windows
    if window is not None:
        if window not in windows:
            raise ValueError(f"no window {window!r} in the export; it has {windows}")
        windows = [window]
    frame = trace.frame
    if start_s is not None:
        frame = frame.filter(pl.col("time_s") >= start_s)
    if end_s is not None:
        frame = frame.filter(pl.col("time_s") < end_s)
    out = {}
    for name in windows:
        rows = frame.select("time_s", name).drop_nulls()
        out[name] = estimate_growth_rate(
            rows.get_column("time_s").to_numpy(), rows.get_column(name).to_numpy(), **options
        )
    return out


# ---------------------------------------------------------------------------------------------
# the steps


@dataclass(frozen=True)
class _Settings:
    min_rate: float
    max_rate: float
    min_periods: float
    false_alarm: float
    max_relative: float
    method: Method


@dataclass
class _Context:
    """What the steps learn along the way, for the estimate they end in."""

    monolayer_nm: float
    warnings: list[str] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    n_samples: int = 0
    duration_s: float = 0.0

    def fork(self) -> _Context:
        """A fresh context for one span, keeping what the cleaning found."""
        return _Context(self.monolayer_nm, list(self.warnings), {}, self.n_samples,
                        self.duration_s)  # fmt: skip

    def reject(self, code: str, reason: str) -> RheedEstimate:
        return RheedEstimate(
            oscillating=False,
            quality=dict(self.quality),
            reason=reason,
            reason_code=code,
            warnings=tuple(self.warnings),
            monolayer_nm=self.monolayer_nm,
            n_samples=self.n_samples,
            duration_s=self.duration_s,
        )

    def accept(
        self, rate_ml_s: float, sigma_ml_s: float, n_periods: float, method: str
    ) -> RheedEstimate:
        return RheedEstimate(
            oscillating=True,
            rate_ml_s=rate_ml_s,
            rate_nm_s=rate_ml_s * self.monolayer_nm,
            period_s=1.0 / rate_ml_s,
            uncertainty_ml_s=sigma_ml_s,
            n_periods=n_periods,
            method=method,
            quality=dict(self.quality),
            warnings=tuple(self.warnings),
            monolayer_nm=self.monolayer_nm,
            n_samples=self.n_samples,
            duration_s=self.duration_s,
        )


def _clean(t: Array, y: Array, context: _Context) -> tuple[Array, Array] | RheedEstimate:
    """Finite samples in time order, repeated times averaged; or why there is nothing to fit."""
    if len(t) == 0:
        return context.reject("no_data", "no samples")
    finite = np.isfinite(t) & np.isfinite(y)
    dropped = int(len(t) - finite.sum())
    if dropped == len(t):
        return context.reject("no_data", f"none of the {len(t)} samples is a finite number")
    if dropped:
        context.warnings.append(f"{dropped} non-finite sample(s) left out")
    t, y = t[finite], y[finite]
    times, inverse = np.unique(t, return_inverse=True)  # sorted
    if len(times) < len(t):  # repeated time stamps: one sample at their mean
        y = np.bincount(inverse, weights=y) / np.bincount(inverse)
    else:
        y = y[np.argsort(t, kind="stable")]
    t = times
    context.n_samples = len(t)
    context.duration_s = float(t[-1] - t[0])
    if len(t) < MIN_SAMPLES:
        return context.reject(
            "too_short", f"only {len(t)} samples; at least {MIN_SAMPLES} are needed"
        )
    if float(np.std(y)) <= 1e-9 * max(float(np.mean(np.abs(y))), 1e-300):
        return context.reject("flat", "the intensity is constant: nothing oscillates")
    return t, y


def _leading_spans(duration: float) -> list[float]:
    """The whole window, then its first half, quarter, ... down to LEADING_MIN_S."""
    spans = [duration]
    while len(spans) < LEADING_SPANS and spans[-1] / 2 >= LEADING_MIN_S:
        spans.append(spans[-1] / 2)
    return spans


def _estimate_span(
    t: Array, y: Array, context: _Context, rotation_hz: float | None, settings: _Settings
) -> RheedEstimate:
    context.n_samples = len(t)
    context.duration_s = float(t[-1] - t[0])
    if len(t) < MIN_SAMPLES:
        return context.reject(
            "too_short", f"only {len(t)} samples; at least {MIN_SAMPLES} are needed"
        )
    band = _band(t, settings, context)
    if isinstance(band, RheedEstimate):
        return band
    peak = _fft_peak(t, y, band, rotation_hz, settings.false_alarm, context)
    if isinstance(peak, RheedEstimate):
        return peak
    if settings.method == "fft":
        return _from_fft(peak, settings, context)
    return _from_fit(peak, t, y, band, rotation_hz, settings, context)


def _band(t: Array, settings: _Settings, context: _Context) -> tuple[float, float] | RheedEstimate:
    """Rates that can be measured here: at least `min_periods` in the trace, at least
    SAMPLES_PER_PERIOD samples per period."""
    sample_hz = 1.0 / float(np.median(np.diff(t)))
    fastest = sample_hz / SAMPLES_PER_PERIOD
    f_hi = min(settings.max_rate, fastest)
    f_lo = max(settings.min_rate, settings.min_periods / context.duration_s)
    context.quality["sample_hz"] = sample_hz
    context.quality["max_gap_s"] = float(np.diff(t).max())
    if fastest <= settings.min_rate:
        return context.reject(
            "undersampled",
            f"sampled at {sample_hz:.3g} Hz: rates up to {fastest:.3g} ML/s are measurable, "
            f"below the slowest plausible {settings.min_rate:g} ML/s",
        )
    if f_lo >= f_hi:
        return context.reject(
            "too_short",
            f"{context.duration_s:.1f} s holds fewer than {settings.min_periods:g} periods at "
            f"the fastest measurable rate ({f_hi:.3g} ML/s at {sample_hz:.3g} Hz)",
        )
    return f_lo, f_hi


# ---------------------------------------------------------------------------------------------
# spectrum


@dataclass(frozen=True)
class _Peak:
    freq_hz: float
    sigma_hz: float  # Cramer-Rao bound of the peak combined with the interpolations' spread
    snr: float  # peak power over the mean noise power at the peak


def _uniform(t: Array, y: Array) -> tuple[Array, Array]:
    """The trace on a uniform grid at its median step (linear interpolation)."""
    step = float(np.median(np.diff(t)))
    n = math.floor((t[-1] - t[0]) / step) + 1
    grid = t[0] + step * np.arange(n)
    return grid, np.interp(grid, t, y)


def _poly_columns(tau: Array, duration: float, degree: int) -> list[Array]:
    u = 2.0 * tau / duration - 1.0
    return [u**k for k in range(degree + 1)]


def _rotation_columns(tau: Array, rotation_hz: float | None) -> list[Array]:
    if rotation_hz is None:
        return []
    columns = []
    for k in range(1, ROTATION_HARMONICS + 1):
        phase = 2 * np.pi * k * rotation_hz * tau
        columns += [np.cos(phase), np.sin(phase)]
    return columns


def _fft_peak(
    t: Array,
    y: Array,
    band: tuple[float, float],
    rotation_hz: float | None,
    false_alarm: float,
    context: _Context,
) -> _Peak | RheedEstimate:
    """The spectral peak in the band that stands out most, and whether it is above the noise."""
    f_lo, f_hi = band
    grid, values = _uniform(t, y)
    tau = grid - grid[0]
    duration = float(tau[-1])
    # a cubic takes out the roughening drop and slow drifts; the rotation's harmonics go too
    design = np.column_stack(_poly_columns(tau, duration, 3) + _rotation_columns(tau, rotation_hz))
    detrended = values - design @ np.linalg.lstsq(design, values, rcond=None)[0]
    n = len(detrended)
    nfft = 1 << math.ceil(math.log2(n * ZERO_PADDING))
    power = np.abs(np.fft.rfft(detrended * np.hanning(n), n=nfft)) ** 2
    freqs = np.fft.rfftfreq(nfft, float(grid[1] - grid[0]))
    df = float(freqs[1] - freqs[0])
    resolution = 1.0 / duration
    allowed = (freqs >= f_lo) & (freqs <= f_hi)
    if rotation_hz is not None:  # what is left of the azimuthal modulation is no growth
        for k in range(1, ROTATION_HARMONICS + 1):
            allowed &= np.abs(freqs - k * rotation_hz) > max(2 * resolution, 0.01 * k * rotation_hz)
    local_max = np.zeros(len(power), dtype=bool)
    local_max[1:-1] = (power[1:-1] >= power[:-2]) & (power[1:-1] >= power[2:])
    candidates = np.flatnonzero(allowed & local_max)
    if len(candidates) == 0:
        return context.reject("no_peak", f"no spectral peak between {f_lo:.3g} and {f_hi:.3g} ML/s")
    # on drift's red spectrum the strongest peak is not always the one that stands out most
    best: tuple[float, int, float, float] | None = None  # snr, bin, frequency, spread
    for k in candidates[np.argsort(power[candidates])[::-1][:PEAKS_TRIED]]:
        freq, spread = _interpolate_peak(power, int(k), df)
        noise = _noise_floor(freqs, power, freq, resolution)
        if noise is None:
            continue
        snr = float(power[k]) / noise if noise > 0 else math.inf
        if best is None or snr > best[0]:
            best = (snr, int(k), freq, spread)
    if best is None:
        return context.reject("no_peak", "the trace is too short to estimate its noise floor")
    snr, k, freq, spread = best
    # chance that one of the band's frequencies (searched between the bins too) reaches this
    # high on noise alone: the ordinates are exponential, P(P > snr x mean) = exp(-snr)
    trials = max(2.0 * (f_hi - f_lo) * duration, 1.0)
    p_false = min(1.0, trials * math.exp(-min(snr, 700.0)))
    context.quality.update(fft_rate_ml_s=freq, snr=snr, false_alarm=p_false)
    if p_false > false_alarm:
        return context.reject(
            "no_peak",
            f"no peak above the noise floor (strongest at {freq:.3g} ML/s, {snr:.1f}x the mean "
            f"noise power; false-alarm probability {p_false:.2g} > {false_alarm:g})",
        )
    # Cramer-Rao bound of a sinusoid's frequency in white noise, from the spectral SNR; the
    # Hann window costs about 1.5x
    crlb = 1.5 * math.sqrt(3.0 / snr) / (2 * math.pi * duration)
    return _Peak(freq, math.hypot(crlb, spread), snr)


def _noise_floor(freqs: Array, power: Array, freq: float, resolution: float) -> float | None:
    """Mean noise power at `freq`, from the spectrum around it (within a factor 2, 4 or 8; the
    peak's lobe left out): a straight line through log power against log frequency, so that a
    sloped floor (drift: power ~ 1/f^2) is met at the peak and not passed for one. A periodogram
    ordinate of noise is exponential: E[log P] = log(mean) - Euler's gamma. The floor is taken one
    standard error high (few neighbours, an extrapolated slope)."""
    lobe = 3 * resolution + 0.05 * freq
    df = float(freqs[1] - freqs[0])
    for widen in (2.0, 4.0, 8.0):
        near = (freqs >= freq / widen) & (freqs <= freq * widen) & (freqs > 0)
        near &= np.abs(freqs - freq) > lobe
        if near.sum() * df >= NOISE_BINS * HANN_RESOLUTION * resolution:
            break
    else:
        return None
    x = np.log(freqs[near])
    logs = np.log(np.maximum(power[near], 1e-300))
    independent = near.sum() * df / (HANN_RESOLUTION * resolution)
    x_mean, log_mean = float(x.mean()), float(logs.mean())
    spread = float(np.sum((x - x_mean) ** 2))
    slope = float(np.sum((x - x_mean) * (logs - log_mean)) / spread) if spread > 0 else 0.0
    slope = min(max(slope, -MAX_FLOOR_SLOPE), MAX_FLOOR_SLOPE)
    at = math.log(freq)
    residual = logs - (log_mean + slope * (x - x_mean))
    variance = max(float(np.mean(residual**2)), math.pi**2 / 6)  # var(log Exp(1)) = pi^2/6
    leverage = (at - x_mean) ** 2 / (spread * independent / near.sum()) if spread > 0 else 0.0
    standard_error = math.sqrt(variance / independent + variance * leverage)
    return math.exp(log_mean + slope * (at - x_mean) + EULER_GAMMA + standard_error)


def _interpolate_peak(power: Array, k: int, df: float) -> tuple[float, float]:
    """Sub-bin peak: Gaussian interpolation (a parabola through log power, near exact for a Hann
    main lobe); the plain parabola's answer differs by the interpolation's own uncertainty."""
    left, mid, right = float(power[k - 1]), float(power[k]), float(power[k + 1])
    logs = [math.log(max(v, 1e-300)) for v in (left, mid, right)]
    curvature = logs[0] - 2 * logs[1] + logs[2]
    gauss = 0.5 * (logs[0] - logs[2]) / curvature if curvature < 0 else 0.0
    curvature = left - 2 * mid + right
    plain = 0.5 * (left - right) / curvature if curvature < 0 else 0.0
    return (k + gauss) * df, abs(gauss - plain) * df


def _from_fft(peak: _Peak, settings: _Settings, context: _Context) -> RheedEstimate:
    n_periods = peak.freq_hz * context.duration_s
    relative = peak.sigma_hz / peak.freq_hz
    if relative > settings.max_relative:
        return context.reject(
            "uncertain", f"the FFT peak is too broad: ±{100 * relative:.0f} % of the rate"
        )
    if n_periods < LOW_CONFIDENCE_PERIODS:
        context.warnings.append(f"only {n_periods:.1f} periods: low confidence")
    return context.accept(peak.freq_hz, peak.sigma_hz, n_periods, "fft")


# ---------------------------------------------------------------------------------------------
# damped-sine fit


@dataclass(frozen=True)
class _Fit:
    freq_hz: float
    gamma: float  # envelope decay, 1/s
    beta: float  # baseline decay, 1/s
    linear: Array  # c0, c1, c2, b, a, s, then the rotation harmonics
    residual: Array
    design: Array

    @property
    def amplitude(self) -> float:
        return math.hypot(float(self.linear[4]), float(self.linear[5]))


def _wave_columns(tau: Array, params: Sequence[float]) -> Array:
    """The columns that move with (f, gamma, beta): baseline decay, damped cosine and sine."""
    freq, gamma, beta = params
    envelope = np.exp(-gamma * tau)
    phase = 2 * np.pi * freq * tau
    return np.column_stack(
        [np.exp(-beta * tau), envelope * np.cos(phase), envelope * np.sin(phase)]
    )


def _fit_design(
    tau: Array, duration: float, params: Sequence[float], rotation: list[Array]
) -> Array:
    """c0, c1, c2 (polynomial), b (baseline decay), a, s (damped wave), rotation harmonics."""
    polynomial = np.column_stack(_poly_columns(tau, duration, 2))
    return np.column_stack([polynomial, _wave_columns(tau, params), *rotation])


def _solve_linear(design: Array, y: Array) -> Array:
    """Least squares with the columns scaled (an exponential can mimic the polynomial)."""
    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0
    coef, *_ = np.linalg.lstsq(design / scale, y, rcond=1e-10)
    return coef / scale


def _damped_sine_fit(
    tau: Array, y: Array, f0: float, band: tuple[float, float], rotation_hz: float | None
) -> _Fit | None:
    """Variable projection: (f, gamma, beta) by bounded least squares, the linear coefficients
    solved exactly at each step; a few seeds for the damping and the baseline. None when the fit
    fails or its frequency runs to a bound."""
    duration = float(tau[-1])
    rotation = _rotation_columns(tau, rotation_hz)
    step = float(np.median(np.diff(tau)))
    f_lo, f_hi = band
    lower = [max(f0 * (1 - FREQUENCY_SEARCH), f_lo * 0.9), 0.0, 0.5 / duration]
    upper = [min(f0 * (1 + FREQUENCY_SEARCH), f_hi * 1.1), 3.0 * f_hi, 0.5 / step]
    if not (lower[0] < f0 < upper[0] and lower[2] < upper[2]):
        return None
    weight = 1.0 / max(float(np.std(y)), 1e-300)
    # the baseline polynomial and the rotation terms do not change with (f, gamma, beta): project
    # them out once, then each step solves for three columns only (and stays quick)
    fixed, _ = np.linalg.qr(np.column_stack(_poly_columns(tau, duration, 2) + rotation))
    y_free = y - fixed @ (fixed.T @ y)

    def residual(params: Array) -> Array:
        varying = _wave_columns(tau, params)
        varying = varying - fixed @ (fixed.T @ varying)
        return (y_free - varying @ _solve_linear(varying, y_free)) * weight

    best = None
    for gamma0 in (0.03 * f0, 0.2 * f0):
        for beta0 in (3.0 / duration, 0.5 * f0):
            x0 = np.clip([f0, gamma0, beta0], lower, upper)
            try:
                found = least_squares(
                    residual, x0, bounds=(lower, upper), x_scale=[0.01 * f0, 0.1 * f0, f0],
                    max_nfev=100,
                )  # fmt: skip
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.all(np.isfinite(found.x)) and (best is None or found.cost < best.cost):
                best = found
    if best is None or best.status <= 0:
        return None
    freq = float(best.x[0])
    if min(freq - lower[0], upper[0] - freq) < 1e-6 * f0:
        return None  # ran to a bound: the optimum is elsewhere
    design = _fit_design(tau, duration, best.x, rotation)
    linear = _solve_linear(design, y)
    return _Fit(freq, float(best.x[1]), float(best.x[2]), linear, y - design @ linear, design)


def _residual_autocorrelation(residual: Array) -> float:
    """Lag-1 autocorrelation of the residuals: near 0 for white noise, near 1 for drift."""
    r = residual - residual.mean()
    energy = float(r @ r)
    return float(r[1:] @ r[:-1]) / energy if energy > 0 else 0.0


def _sigmas(tau: Array, fit: _Fit) -> tuple[float, float]:
    """1 sigma of the frequency and of the damping from the covariance of all parameters,
    (J^T J)^-1 s^2, with s^2 inflated by (1 + rho)/(1 - rho) for the residuals' lag-1
    autocorrelation rho (structure the fit leaves makes errors correlated)."""
    a, s = float(fit.linear[4]), float(fit.linear[5])
    envelope = np.exp(-fit.gamma * tau)
    phase = 2 * np.pi * fit.freq_hz * tau
    wave = envelope * (a * np.cos(phase) + s * np.sin(phase))
    d_freq = envelope * 2 * np.pi * tau * (-a * np.sin(phase) + s * np.cos(phase))
    d_gamma = -tau * wave
    d_beta = -tau * float(fit.linear[3]) * np.exp(-fit.beta * tau)
    jacobian = np.column_stack([d_freq, d_gamma, d_beta, fit.design])
    dof = max(len(tau) - jacobian.shape[1], 1)
    rho = min(max(_residual_autocorrelation(fit.residual), 0.0), 0.95)
    variance = float(fit.residual @ fit.residual) / dof * (1 + rho) / (1 - rho)
    scale = np.linalg.norm(jacobian, axis=0)
    scale[scale == 0] = 1.0
    normal = (jacobian / scale).T @ (jacobian / scale)
    covariance = np.linalg.pinv(normal, rcond=1e-12) / np.outer(scale, scale)
    return (
        math.sqrt(max(float(covariance[0, 0]) * variance, 0.0)),
        math.sqrt(max(float(covariance[1, 1]) * variance, 0.0)),
    )


def _visible_s(tau: Array, fit: _Fit, duration: float) -> float:
    """How long the oscillation stands above the noise: until its envelope falls below the noise
    left in the average over one period (residual rms / sqrt(samples per period))."""
    noise = float(np.std(fit.residual))
    per_period = max(len(tau) / (duration * fit.freq_hz), 1.0)
    floor = noise / math.sqrt(per_period)
    if fit.amplitude <= floor:
        return 0.0
    if fit.gamma > 0 and floor > 0:
        return min(duration, math.log(fit.amplitude / floor) / fit.gamma)
    return duration


def _drift_sigma(
    tau: Array, y: Array, fit: _Fit, visible_s: float, band: tuple[float, float],
    rotation_hz: float | None, min_periods: float, context: _Context,
) -> float:  # fmt: skip
    """The rate's drift within the window (a shutter transient, a flux drift): fits of the two
    halves of the visible oscillation; the part of their difference that their own noise does
    not explain, halved, is one sigma of how far the whole fit's rate may sit from the mean."""
    middle = visible_s / 2
    if fit.freq_hz * middle < min_periods:
        return 0.0
    rates = []
    for part in (tau < middle, (tau >= middle) & (tau <= visible_s)):
        if part.sum() < MIN_SAMPLES:
            return 0.0
        half_tau = tau[part] - tau[part][0]
        half = _damped_sine_fit(half_tau, y[part], fit.freq_hz, band, rotation_hz)
        if half is None:
            return 0.0
        rates.append((half.freq_hz, _sigmas(half_tau, half)[0]))
    (f_a, s_a), (f_b, s_b) = rates
    context.quality["halves_rate_ml_s"] = f_a
    context.quality["halves_rate_late_ml_s"] = f_b
    excess = (f_a - f_b) ** 2 - s_a**2 - s_b**2
    return math.sqrt(excess) / 2 if excess > 0 else 0.0


def _from_fit(
    peak: _Peak,
    t: Array,
    y: Array,
    band: tuple[float, float],
    rotation_hz: float | None,
    settings: _Settings,
    context: _Context,
) -> RheedEstimate:
    tau = t - t[0]
    duration = context.duration_s
    fit = _damped_sine_fit(tau, y, peak.freq_hz, band, rotation_hz)
    if fit is None:
        return context.reject(
            "fit_failed",
            f"the damped-sine fit did not converge near the FFT's {peak.freq_hz:.3g} ML/s",
        )
    wave = fit.design[:, 4:6] @ fit.linear[4:6]
    detrended = fit.residual + wave  # the data less the fitted baseline
    total = float(np.sum((detrended - detrended.mean()) ** 2))
    r2 = 1.0 - float(fit.residual @ fit.residual) / total if total > 0 else 0.0
    noise = float(np.std(fit.residual))
    visible_s = _visible_s(tau, fit, duration)
    n_periods = fit.freq_hz * visible_s
    periods_in_window = fit.freq_hz * duration
    sigma, sigma_gamma = _sigmas(tau, fit)
    context.quality.update(
        fit_rate_ml_s=fit.freq_hz,
        fit_sigma_ml_s=sigma,
        r2=r2,
        amplitude_to_noise=fit.amplitude / noise if noise > 0 else math.inf,
        damping_s=1.0 / fit.gamma if fit.gamma > 0 else math.inf,
        periods_in_window=periods_in_window,
        residual_autocorrelation=_residual_autocorrelation(fit.residual),
    )
    tolerance = MAX_FIT_FFT_DISAGREEMENT * peak.freq_hz + 1.0 / (3.0 * duration)
    if abs(fit.freq_hz - peak.freq_hz) > tolerance:
        return context.reject(
            "fit_fft_disagree",
            f"the fit ({fit.freq_hz:.4g} ML/s) and the FFT ({peak.freq_hz:.4g} ML/s) disagree",
        )
    if n_periods < settings.min_periods:
        return context.reject(
            "few_periods",
            f"only {n_periods:.1f} periods stand above the noise; at least "
            f"{settings.min_periods:g} are needed",
        )
    needed_r2 = MIN_OSCILLATION_R2 if n_periods >= LOW_CONFIDENCE_PERIODS else FEW_PERIODS_R2
    if r2 < needed_r2:
        return context.reject(
            "noise",
            f"the damped sine explains only {100 * max(r2, 0.0):.0f} % of the detrended "
            f"intensity (at least {100 * needed_r2:.0f} % needed over {n_periods:.1f} periods)",
        )
    # undamped beyond doubt: even the damping 2 sigma up lasts over MAX_DAMPING_PERIODS periods
    most_damping = fit.gamma + 2 * sigma_gamma
    if periods_in_window >= UNDAMPED_PERIODS and most_damping * MAX_DAMPING_PERIODS < fit.freq_hz:
        return context.reject(
            "undamped",
            f"a modulation at {fit.freq_hz:.4g} Hz keeps its amplitude over "
            f"{periods_in_window:.0f} periods: growth oscillations fade within tens of "
            "monolayers (a rotating wafer? give its rpm)",
        )
    drift = _drift_sigma(tau, y, fit, visible_s, band, rotation_hz, settings.min_periods, context)
    sigma = math.hypot(sigma, drift)
    if not math.isfinite(sigma) or sigma > settings.max_relative * fit.freq_hz:
        return context.reject(
            "uncertain",
            f"the rate is uncertain to ±{100 * sigma / fit.freq_hz:.0f} % "
            f"(at most {100 * settings.max_relative:.0f} % accepted)",
        )
    if n_periods < LOW_CONFIDENCE_PERIODS:
        context.warnings.append(f"only {n_periods:.1f} periods: low confidence")
    max_gap = context.quality.get("max_gap_s", 0.0)
    if max_gap > 0.5 / fit.freq_hz:
        context.warnings.append(f"gaps of up to {max_gap:.2f} s: over half a period")
    return context.accept(fit.freq_hz, sigma, n_periods, "damped_sine")


# ---------------------------------------------------------------------------------------------
def _with_warning(estimate: RheedEstimate, warning: str) -> RheedEstimate:
    return replace(estimate, warnings=(*estimate.warnings, warning))


def _utc(moment: datetime | str) -> datetime:
    """A datetime or ISO string in UTC; naive times are UTC (the twin's clocks are)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _json_number(value: float) -> float | None:
    """JSON has no infinity or NaN."""
    value = float(value)
    return value if math.isfinite(value) else None
