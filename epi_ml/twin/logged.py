"""The channels a twin tool logs: canonical name, EPIC tag (epi_ml.readers.tagmaps.EPIC_TAGS) and
the number format EPIC writes them with."""

from __future__ import annotations

from dataclasses import dataclass

from epi_ml.twin.formats import ValueFormat
from epi_ml.twin.tools import CELL_NAMES


@dataclass(frozen=True)
class LoggedChannel:
    name: str  # canonical (epi_ml.channels)
    tag: str  # EPIC tag, also the file name: `<tag>.txt`
    fmt: ValueFormat


def _cell_channels() -> list[LoggedChannel]:
    out = []
    for cell in CELL_NAMES:
        out += [
            LoggedChannel(f"{cell}.T", f"{cell}.PID.MV", "fixed1"),
            LoggedChannel(f"{cell}.T_set", f"{cell}.PID.SP", "fixed1"),
            LoggedChannel(f"{cell}.power", f"{cell}.PID.wOP", "sig4"),
        ]
    for cell in ("Ga", "In"):  # dual-heater cells: the hot-lip zone
        out += [
            LoggedChannel(f"{cell}.T_lip", f"{cell}HL.PID.MV", "fixed1"),
            LoggedChannel(f"{cell}.T_lip_set", f"{cell}HL.PID.SP", "fixed1"),
            LoggedChannel(f"{cell}.lip_power", f"{cell}HL.PID.wOP", "sig4"),
        ]
    return out


# Sampled by the logger on every pass (~1 s); RHEED has its own, faster clock.
LOGGED: tuple[LoggedChannel, ...] = (
    *_cell_channels(),
    LoggedChannel("sub.T", "Sub.PID.MV", "fixed1"),
    LoggedChannel("sub.T_set", "Sub.PID.SP", "fixed1"),
    LoggedChannel("sub.power", "Sub.PID.wOP", "sig4"),
    LoggedChannel("sub.T_pyro", "Pyro.PID.MV", "fixed1"),
    LoggedChannel("sub.rpm", "Sub.Rot.MV", "fixed1"),
    LoggedChannel("As.valve", "As.Valve.MV", "fixed1"),
    LoggedChannel("As.valve_set", "As.Valve.SP", "fixed1"),
    LoggedChannel("As.T_bulk", "As.PID.MV", "fixed1"),
    LoggedChannel("As.T_crack", "AsCr.PID.MV", "fixed1"),
    LoggedChannel("BEP", "FLUX IG.PG.MV", "pressure"),
    LoggedChannel("P.chamber", "GC IG.PG.MV", "pressure"),
    LoggedChannel("P.main", "MC IG.PG.MV", "pressure"),
)
RHEED = LoggedChannel("RHEED.I", "RHEED.Spec.MV", "fixed1")
ALL_LOGGED: tuple[LoggedChannel, ...] = (*LOGGED, RHEED)
BY_NAME = {c.name: c for c in ALL_LOGGED}

# Shutters.txt columns, in order (EPIC `<name>_Sh`, 1 = open)
SHUTTER_NAMES = ("Sub", "Ga", "Al", "In", "Si", "Be", "As")
SHUTTER_COLUMNS = tuple(f"{name}_Sh" for name in SHUTTER_NAMES)


def shutter_channel(name: str) -> str:
    return "sub.shutter" if name == "Sub" else f"{name}.shutter"
