"""What each channel is expected to look like: a declarative schema, like TFX SchemaGen's.

Expectations are keyed by *quantity* (the part of the channel name after the dot: `T`, `T_set`,
`chamber`, ...) so that one entry covers every cell; a tool overrides single channels with
`Limits.with_channel("P.main", operating_max=1e-6)`. Three levels of "wrong" per value:
  physical range   outside = impossible for the instrument (cell at −50 °C)      -> ERROR
  over-range code  the instrument's "cannot measure" code (ion gauge 9.9e9 Torr) -> WARNING
  operating range  outside = possible but unusual (chamber above 1e-4 Torr)      -> WARNING
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from epi_ml.channels import quantity_of


class ChannelLimits(BaseModel):
    """Expectations for one kind of channel. `None` switches the corresponding check off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: str = ""
    # Value ranges (see module docstring).
    physical_min: float | None = None
    physical_max: float | None = None
    allowed_values: tuple[float, ...] | None = None  # discrete channels (shutters: 0/1)
    over_range_code: float | None = None  # values >= this are the instrument's over-range code
    operating_min: float | None = None
    operating_max: float | None = None
    operating_note: str = ""  # likely cause when outside the operating range
    # Timing. Event-driven channels (shutter logs) are written on change only: no gap/stuck checks.
    event_driven: bool = False
    sample_period_s: float | None = None  # None: the channel's median sample period in this run
    gap_factor: float = 10.0  # a gap is a pause longer than gap_factor x the sample period
    # Stuck sensor: exactly flat (|step| <= stuck_tolerance) for at least stuck_after_s.
    stuck_after_s: float | None = None
    stuck_tolerance: float = 0.0
    # Spikes: |value - rolling median| above max(spike_mad_factor x robust sigma, spike_min_jump).
    # The floor keeps thermocouple noise and 1-LSB jitter from ever firing.
    spike_min_jump: float | None = None
    spike_mad_factor: float = 8.0
    log_scale: bool = False  # pressures: spikes and excursions are judged in decades
    # Pressure excursion: above excursion_factor x the run's base pressure for excursion_min_s.
    excursion_factor: float | None = None
    excursion_min_s: float = 60.0
    # Setpoint tracking, for channels that have a `<channel>_set` partner.
    setpoint_tolerance: float | None = None
    setpoint_settle_s: float = 300.0  # ignore this long after each setpoint change (ramp transient)
    setpoint_sustain_s: float = 60.0  # report only deviations that last at least this long


_TEMPERATURE = ChannelLimits(
    unit="°C",
    physical_min=-20.0,  # no cell or heater is ever colder; below means a broken thermocouple
    physical_max=2000.0,
    operating_min=0.0,
    operating_max=1500.0,
    stuck_after_s=600.0,
    spike_min_jump=5.0,  # thermocouple noise is 0.05-0.1 °C rms; cells cannot move 5 °C in a second
    setpoint_tolerance=2.0,  # about 4 % of flux for a group-III cell
)
_TEMPERATURE_SETPOINT = ChannelLimits(unit="°C", physical_min=-20.0, physical_max=2000.0)
_ION_GAUGE = ChannelLimits(
    unit="Torr",
    physical_min=1e-14,  # <= 0 is impossible; below any gauge's floor likewise
    physical_max=1e3,
    # An ion gauge that is off, tripped or over range writes a code, not a pressure: EPIC 1000.0
    # (the real MIG.PG.MV reads it all day, research/domain.md), others 9.9e9 or 1e10.
    over_range_code=1000.0,
    operating_max=1e-4,
    operating_note="a growth chamber above 1e-4 Torr is venting or baking out",
    stuck_after_s=600.0,
    spike_min_jump=1.0,  # decades
    log_scale=True,
    excursion_factor=10.0,
)
_PERCENT = ChannelLimits(unit="%", physical_min=0.0, physical_max=100.0)

DEFAULT_BY_QUANTITY: dict[str, ChannelLimits] = {
    # Every other `T_*` quantity (T_lip, T_tip, T_crack, ...) takes "T", every `T_*_set` "T_set".
    "T": _TEMPERATURE,
    # A pyrometer reads nothing useful below ~300 °C: low readings are its floor, not a fault.
    "T_pyro": _TEMPERATURE.model_copy(update={"operating_min": None}),
    "T_set": _TEMPERATURE_SETPOINT,
    "power": _PERCENT,
    "lip_power": _PERCENT,
    "valve": _PERCENT.model_copy(
        update={"setpoint_tolerance": 2.0, "setpoint_settle_s": 60.0, "setpoint_sustain_s": 30.0}
    ),
    "valve_set": _PERCENT,
    "shutter": ChannelLimits(unit="0/1", allowed_values=(0.0, 1.0), event_driven=True),
    "rpm": ChannelLimits(unit="rpm", physical_min=-200.0, physical_max=200.0),
    "chamber": _ION_GAUGE,
    "main": _ION_GAUGE,
    # The beam flux gauge is moved in and out of the beam: steps by decades are its job.
    "BEP": _ION_GAUGE.model_copy(update={"excursion_factor": None, "operating_note": ""}),
    "I": ChannelLimits(unit="a.u.", stuck_after_s=600.0),
}

# Sources whose flux raises the chamber pressure on purpose (group V and plasma gases): while one
# is open, and for a pump-down time after, a pressure rise is growth, not an excursion.
GAS_SOURCES = ("As", "Sb", "N", "O")

# The other units an instrument might have been logged in: name -> (factor, offset) that converts
# a value in that unit to the canonical one (canonical = value * factor + offset).
ALTERNATIVE_UNITS: dict[str, dict[str, tuple[float, float]]] = {
    "°C": {"K": (1.0, -273.15)},
    "Torr": {"mbar": (0.750062, 0.0), "Pa": (0.00750062, 0.0)},
}


class Limits(BaseModel):
    """The expectations of one tool: defaults by quantity plus per-channel overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by_quantity: dict[str, ChannelLimits] = DEFAULT_BY_QUANTITY
    by_channel: dict[str, ChannelLimits] = {}
    # A cell counts as growing when its shutter is open and it is at least this hot; below, an open
    # shutter is just a cold cell (EPIC tools open shutters of idle cells during other work).
    active_cell_min_T: float = 400.0
    gas_sources: tuple[str, ...] = GAS_SOURCES
    gas_valve_open_pct: float = 1.0
    gas_pumpdown_s: float = 600.0
    # Shutter vs recipe: edges within this of a step boundary are timing jitter, not a mismatch;
    # a mismatch longer than this fraction of the step means the layer is not what the recipe says.
    shutter_edge_tolerance_s: float = 2.0
    shutter_error_fraction: float = 0.05

    def for_channel(self, channel: str) -> ChannelLimits | None:
        """The expectations for a channel, or None for a channel nobody described (`raw:` tags)."""
        if channel in self.by_channel:
            return self.by_channel[channel]
        if channel.startswith("raw:"):
            return None
        quantity = quantity_of(channel)
        if quantity in self.by_quantity:
            return self.by_quantity[quantity]
        if quantity.startswith("T_"):  # any other temperature: As.T_crack, Ga.T_tip_set, ...
            return self.by_quantity.get("T_set" if quantity.endswith("_set") else "T")
        return None

    def with_channel(self, channel: str, **changes: object) -> Limits:
        """A copy in which one channel's expectations differ: `limits.with_channel("P.main",
        operating_max=1e-6)`. Starts from what the channel had, so only the changes are needed."""
        base = self.for_channel(channel) or ChannelLimits()
        updated = ChannelLimits.model_validate({**base.model_dump(), **changes})
        return self.model_copy(update={"by_channel": {**self.by_channel, channel: updated}})


DEFAULT_LIMITS = Limits()
