"""Per-tool tag maps: vendor tags -> canonical channel names (epi_ml.channels).

A tag map is a plain dict so that a fab can extend it in configuration. Tags that no map knows are
reported by validation (finding `unknown_tag`) and kept in the archive; they are never dropped silently.
"""

from __future__ import annotations

# EPIC (the control software of e.g. PDI Berlin's MBE8 and of the digital twin's tools).
# `<cell>.PID.MV` = measured temperature, `.PID.SP` = setpoint, `.PID.wOP` = working output power,
# `<cell>HL` = hot-lip zone, `Sub` = substrate heater, `Pyro` = pyrometer, `* IG.PG.MV` = ion gauges.
EPIC_CELLS = ("Ga", "Al", "In", "Si", "Be", "GeO", "Ba", "SiO", "SnO", "La", "Mg", "Ni", "N")

EPIC_TAGS: dict[str, str] = {}
for _cell in EPIC_CELLS:
    EPIC_TAGS[f"{_cell}.PID.MV"] = f"{_cell}.T"
    EPIC_TAGS[f"{_cell}.PID.SP"] = f"{_cell}.T_set"
    EPIC_TAGS[f"{_cell}.PID.wOP"] = f"{_cell}.power"
    EPIC_TAGS[f"{_cell}HL.PID.MV"] = f"{_cell}.T_lip"
    EPIC_TAGS[f"{_cell}HL.PID.SP"] = f"{_cell}.T_lip_set"
    EPIC_TAGS[f"{_cell}HL.PID.wOP"] = f"{_cell}.lip_power"
EPIC_TAGS.update(
    {
        "Sub.PID.MV": "sub.T",
        "Sub.PID.SP": "sub.T_set",
        "Sub.PID.wOP": "sub.power",
        "Pyro.PID.MV": "sub.T_pyro",
        "Sub.Rot.MV": "sub.rpm",
        "As.Valve.MV": "As.valve",
        "As.Valve.SP": "As.valve_set",
        "AsCr.PID.MV": "As.T_crack",
        "As.PID.MV": "As.T_bulk",
        "FLUX IG.PG.MV": "BEP",
        "GC IG.PG.MV": "P.chamber",
        "MC IG.PG.MV": "P.main",
        "RHEED.Spec.MV": "RHEED.I",
    }
)

# EPIC Shutters.txt columns -> canonical shutter channels (`Ga_Sh` -> `Ga.shutter`).
def epic_shutter_channel(column: str) -> str:
    name = column.removesuffix("_Sh")
    return "sub.shutter" if name == "Sub" else f"{name}.shutter"


# Veeco Molly (next reader): tag -> channel, for the tags we already know.
MOLLY_TAGS: dict[str, str] = {
    "Instances.Ga1_tip.Measured": "Ga.T_tip",
    "Instances.Ga1_base.Measured": "Ga.T",
    "Instances.Al1_base.Measured": "Al.T",
    "Instances.In1_base.Measured": "In.T",
    "Instances.As1_valve.Measured": "As.valve",
    "Instances.GM1_subs_center.Measured": "sub.T",
    "Instances.GM1_BFM.Reading": "BEP",
    "Instances.GM1_Vacuum.Reading": "P.chamber",
}

TAG_MAPS: dict[str, dict[str, str]] = {"epic": EPIC_TAGS, "molly": MOLLY_TAGS}
