"""EPIC `Fitting.txt`: the flux calibration the tool keeps for each source.

    # Ga
    Fit=AEF
    Order=1
    BEPtoFlux=4926000
    Coeff=4.614E00,-2.313E04

`Fit=AEF` with `Order=1` is the Arrhenius fit ln(BEP/Torr) = a + b/T (T in kelvin): the Ga line
gives 2.8e-7 Torr at 900 °C, the magnitude real Ga cells have; the log10 reading would give 8e-16
(research/domain.md §2.3). Higher orders are taken as the same series in 1/T (an assumption: no
file with Order>1 has been seen). `BEPtoFlux` is kept as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from epi_ml.findings import Finding, Severity
from epi_ml.readers.lines import clip
from epi_ml.readers.source import load_text

KELVIN = 273.15
ARRHENIUS_FIT = "AEF"
SECTION = re.compile(r"^\s*#\s*(?P<cell>\S.*?)\s*$")
SETTING = re.compile(r"^\s*(?P<key>[A-Za-z]\w*)\s*=\s*(?P<value>.*?)\s*$")
KEYS = {"Fit": "fit", "Order": "order", "BEPtoFlux": "bep_to_flux", "Coeff": "coeffs"}
Settings = dict[str, tuple[int, str]]  # key -> (line, value text)
Note = Callable[[str, int, str], None]  # message, line, hint
N = TypeVar("N", int, float)


@dataclass(frozen=True)
class EpicFitting:
    cell: str
    fit: str  # "AEF": Arrhenius, ln(BEP) = sum(coeffs[i] / T**i)
    order: int
    bep_to_flux: float | None
    coeffs: tuple[float, ...]

    def bep_torr(self, temperature_c: float | np.ndarray) -> float | np.ndarray:
        """Beam-equivalent pressure (Torr) the fit gives at a cell temperature in °C."""
        if self.fit != ARRHENIUS_FIT:
            raise ValueError(f"{self.cell}: fit {self.fit!r} is not the Arrhenius fit (AEF)")
        inverse_t = 1.0 / (np.asarray(temperature_c, dtype=float) + KELVIN)
        log_bep = sum(c * inverse_t**i for i, c in enumerate(self.coeffs))
        result = np.exp(log_bep)
        return float(result) if np.ndim(result) == 0 else result


def read_epic_fitting(path: str | Path) -> tuple[dict[str, EpicFitting], list[Finding]]:
    """Fitting.txt -> {cell: EpicFitting}. A section without usable coefficients is left out with a
    WARNING; nothing else in the file is lost."""
    source = load_text(path)
    if not source.usable:
        return {}, source.findings
    findings = list(source.findings)
    file = str(source.path)
    sections: list[tuple[str, int, Settings]] = []
    for number, raw in enumerate((source.text or "").split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("'EPIC"):
            continue
        if m := SECTION.match(line):
            sections.append((m.group("cell"), number, {}))
        elif (m := SETTING.match(line)) and sections:
            sections[-1][2][m.group("key")] = (number, m.group("value"))
        else:
            findings.append(
                Finding(
                    "unparseable_line",
                    Severity.WARNING,
                    f"line {number}: neither '# <source>' nor 'Key=value' inside a source: "
                    f"{clip(line)!r}",
                    hint="The line is skipped; the fits of the other sources are read.",
                    file=file,
                    line=number,
                )
            )
    fittings: dict[str, EpicFitting] = {}
    for cell, line, settings in sections:
        fitting, notes = _fitting(cell, line, settings, file)
        findings += notes
        if fitting is None:
            continue
        if cell in fittings:
            findings.append(
                Finding(
                    "repeated_source",
                    Severity.WARNING,
                    f"source {cell!r} has a second section (line {line}); the later one is used",
                    hint="Remove the stale section from Fitting.txt.",
                    file=file,
                    line=line,
                    channel=cell,
                )
            )
        fittings[cell] = fitting
    if not sections:
        findings.append(
            Finding(
                "no_fits",
                Severity.WARNING,
                "Fitting.txt holds no '# <source>' section",
                hint="Without it the tool's flux fits are unknown; calibration files can stand in.",
                file=file,
            )
        )
    return fittings, findings


def _fitting(
    cell: str, line: int, settings: Settings, file: str
) -> tuple[EpicFitting | None, list[Finding]]:
    notes: list[Finding] = []

    def note(message: str, at: int, hint: str) -> None:
        notes.append(
            Finding(
                "bad_fit", Severity.WARNING, message, hint=hint, file=file, line=at, channel=cell
            )
        )

    for key in settings:
        if key not in KEYS:
            note(
                f"source {cell!r}: unknown setting {key!r} (kept out)",
                settings[key][0],
                "Check the line.",
            )
    if "Coeff" not in settings:
        note(
            f"source {cell!r} has no 'Coeff=' line; its fit is left out",
            line,
            "Add the coefficients.",
        )
        return None, notes
    at, text = settings["Coeff"]
    try:
        coeffs = tuple(float(part) for part in text.split(","))
        if not all(math.isfinite(c) for c in coeffs) or len(coeffs) < 2:
            raise ValueError
    except ValueError:
        note(
            f"source {cell!r}: coefficients {clip(text)!r} are not two or more numbers; its "
            "fit is left out",
            at,
            "Write them as 'Coeff=a,b' (ln(BEP) = a + b/T).",
        )
        return None, notes
    fit = settings.get("Fit", (line, ARRHENIUS_FIT))[1]
    if fit != ARRHENIUS_FIT:
        note(
            f"source {cell!r}: fit {fit!r} is not the Arrhenius fit 'AEF'",
            settings["Fit"][0],
            "Check the fit model.",
        )
    order = _number(settings, "Order", int, len(coeffs) - 1, cell, note)
    if order != len(coeffs) - 1:
        note(
            f"source {cell!r}: Order={order} but {len(coeffs)} coefficients (expected {order + 1})",
            at,
            "The coefficients are used as written; check the fit.",
        )
    bep_to_flux = _number(settings, "BEPtoFlux", float, math.nan, cell, note)
    bep_to_flux = None if math.isnan(bep_to_flux) else bep_to_flux
    return EpicFitting(cell, fit, order, bep_to_flux, coeffs), notes


def _number(
    settings: Settings, key: str, kind: Callable[[str], N], default: N, cell: str, note: Note
) -> N:
    if key not in settings:
        return default
    at, text = settings[key]
    try:
        return kind(text)
    except ValueError:
        note(f"source {cell!r}: {key}={clip(text)!r} is not a number", at, f"Fix the {key} line.")
        return default
