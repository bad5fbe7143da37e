"""`/calibration`: per tool and cell, the Arrhenius history, the flux at the working temperature
over time (drift, tolerance, refills), the calibration in force and the next one, drift alarms.

Thin: the data comes from `epi_ml.views.calibration`; this module only draws it.
Element ids (for browser tests): `calibration-tool` (tool picker), `calibration-content`,
`calibration-latest-table`, `calibration-alarms`, `calibration-arrhenius-<cell>`,
`calibration-drift-<cell>`, `calibration-empty` (no calibrations).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, callback, dcc, html
from plotly.colors import sample_colorscale

from dashboard.components import (
    COLOURS,
    empty_state,
    graph,
    page_header,
    clipped,
    command,
    severity_badge,
    stat_card,
    store_not_ready,
    style_figure,
    table,
)
from epi_ml.calibration.schedule import (
    DRIFT,
    MAX_INTERVAL,
    NOT_SCHEDULED,
    REFILL,
    NextCalibration,
)
from epi_ml.channels import DOPANTS
from epi_ml.settings import get_settings
from epi_ml.views.calibration import CalibrationView, calibration_view, read_context

dash.register_page(__name__, path="/calibration", name="Calibration", title="epi-ml — calibration")

DATE_SCALE = "Viridis"
_BASIS = {
    "runs": "median of the grown layers with its shutter open",
    "scan range": "middle of the latest calibration's range",
    "": "",
}


def layout(tool: str | None = None, **_query: str) -> html.Div:
    settings = get_settings()
    try:
        view = calibration_view(read_context(settings), tool)
    except Exception as exc:  # noqa: BLE001 - say what is wrong and what to do, never a blank page
        return html.Div([page_header("Calibration"), store_not_ready(settings, exc)])
    picker = dcc.Dropdown(
        id="calibration-tool",
        options=[{"label": t, "value": t} for t in view.tools],
        value=view.tool,
        clearable=False,
        placeholder="no tool",
        style={"minWidth": "12rem"},
    )
    return html.Div(
        [
            page_header(
                "Calibration",
                "Arrhenius flux fits per cell, drift at the working temperature, next calibration",
                right=html.Div([html.Span("Tool", className="me-2 text-muted"), clipped(picker)],
                               className="d-inline-flex align-items-center"),  # fmt: skip
            ),
            dcc.Loading(html.Div(content(view), id="calibration-content"), type="default"),
        ]
    )


@callback(
    Output("calibration-content", "children"),
    Input("calibration-tool", "value"),
    prevent_initial_call=True,
)
def show_tool(tool: str | None) -> Any:
    settings = get_settings()
    try:
        return content(calibration_view(read_context(settings), tool))
    except Exception as exc:  # noqa: BLE001
        return store_not_ready(settings, exc)


# ---------------------------------------------------------------------------------------------
def content(view: CalibrationView) -> list[Any]:
    if view.empty:
        return [
            empty_state(
                "No calibrations yet",
                "Calibration scans (",
                command("YYYY-MM-DD_HH-MM-SS_<cell>.txt"),
                ") and EPIC ",
                command("Fitting.txt"),
                " files show here once ingested: ",
                command("epi-ml ingest PATH"),
                " (or ",
                command("make demo"),
                " for a simulated campaign). ",
                command("epi-ml calibrate FILE"),
                " fits files on the command line without storing them.",
                id="calibration-empty",
            )
        ]
    return [
        _summary(view),
        html.H5("In force and next calibration", className="mt-3"),
        _latest_table(view),
        html.H5("Drift alarms", className="mt-3"),
        _alarms(view),
        html.H5("Cells", className="mt-3"),
        *[_cell_card(view, cell) for cell in view.cells],
    ]


def _summary(view: CalibrationView) -> dbc.Row:
    scheduled = [n for n in view.schedule.values() if n.due_at is not None]
    soonest = min(scheduled, key=lambda n: n.due_at) if scheduled else None  # type: ignore[arg-type, return-value]
    overdue = sum(n.overdue(view.now) for n in scheduled)
    scans = view.history.filter(pl.col("source") == "scan").height
    cards = [
        stat_card("Cells", str(len(view.cells))),
        stat_card("Calibrations", str(view.history.height), detail=f"{scans} scans"),
        stat_card(
            "Next calibration",
            f"{soonest.cell} {_day(soonest.due_at)}" if soonest else "-",
            detail=f"{overdue} overdue" if overdue else "none overdue",
            colour="danger" if overdue else None,
        ),
        stat_card(
            "Drift alarms",
            str(view.alarms.height),
            detail=f"tolerance {100 * view.tolerance:.0f} %",
            colour="warning" if view.alarms.height else None,
        ),
    ]
    return dbc.Row([dbc.Col(c, md=3) for c in cards], className="g-3")


def _latest_table(view: CalibrationView) -> dbc.Table:
    rows = []
    for r in view.latest.iter_rows(named=True):
        basis = _BASIS[view.working_basis.get(r["cell"], "")]
        dopant = r["cell"] in DOPANTS
        rows.append({
            "cell": html.B(r["cell"]),
            "in force": [_when(r["taken_at"]), html.Span(f" {r['source']}", className="text-muted small")],
            "Ea (eV)": f"{r['activation_ev']:.3f}",
            "r²": _fmt(r["r2"], ".5f"),
            "working T": "-" if dopant else html.Span(f"{r['at_c']:.1f} °C", title=basis, className="text-nowrap"),
            "BEP at T": "-" if dopant else html.Span(f"{r['bep_at']:.3e} Torr", className="text-nowrap"),
            "rate": _fmt(r["rate_ml_s"], ".3f", " ML/s"),
            "last drift": _fmt(None if r["last_drift"] is None else 100 * r["last_drift"], "+.2f", " %"),
            "ΔT to hold": _fmt(r["hold_c"], "+.2f", " °C"),
            "next calibration": _next_badge(view, r),
            "why": html.Span(r["reason"] or "", className="small"),
        })  # fmt: skip
    return table(rows, id="calibration-latest-table", className="align-middle")


def _next_badge(view: CalibrationView, row: dict[str, Any]) -> Any:
    basis = row["basis"]
    if basis is None or basis == NOT_SCHEDULED or row["next_at"] is None:
        return html.Span("not scheduled", className="text-muted")
    left = (row["next_at"] - view.now).total_seconds() / 86400 if view.now else 0.0
    if row["overdue"]:
        badge = dbc.Badge(f"overdue {-left:.0f} d", color="danger", className="ms-1")
    elif left < 1:
        badge = dbc.Badge("due today", color="warning", className="ms-1")
    else:
        badge = dbc.Badge(f"in {left:.0f} d", color="success", className="ms-1")
    label = {DRIFT: "drift", MAX_INTERVAL: "max interval", REFILL: "refill"}.get(basis, basis)
    return html.Span([_when(row["next_at"]), badge,
                      dbc.Badge(label, color="light", text_color="dark", className="ms-1")])  # fmt: skip


def _alarms(view: CalibrationView) -> Any:
    if view.alarms.is_empty():
        return html.P(
            f"No drift alarm: no cell's flux moved more than {100 * view.tolerance:.0f} % between "
            "its last two calibrations.",
            className="text-muted",
            id="calibration-alarms",
        )
    rows = [
        {
            "since": _when(r["started_at"]),
            "channel": r["channel"] or "",
            "severity": severity_badge(r["severity"]),
            "message": html.Span(r["message"], className="small"),
            "acknowledged": r["acknowledged_by"] or "",
        }
        for r in view.alarms.iter_rows(named=True)
    ]
    return html.Div(table(rows), id="calibration-alarms")


def _cell_card(view: CalibrationView, cell: str) -> dbc.Card:
    right: Any
    if cell in DOPANTS:
        right = html.P(
            f"{cell} is a dopant: its BEP is below what flux scans measure, so its flux is not "
            "followed here (doping is calibrated by SIMS / Hall).",
            className="text-muted mt-4",
        )
    else:
        right = graph(drift_figure(view, cell), id=f"calibration-drift-{cell}")
    note = "" if cell in DOPANTS else (
        f"  working temperature {view.working_c[cell]:.1f} °C ({_BASIS[view.working_basis.get(cell, '')]})"
    )
    return dbc.Card(
        [
            dbc.CardHeader([html.B(cell), html.Span(note, className="text-muted small")]),
            dbc.CardBody(
                dbc.Row(
                    [
                        dbc.Col(graph(arrhenius_figure(view, cell), id=f"calibration-arrhenius-{cell}"), lg=6),
                        dbc.Col(right, lg=6),
                    ]
                )
            ),
        ],
        className="mb-3",
        id=f"calibration-cell-{cell}",
    )


# ---------------------------------------------------------------------------------------------
# Figures
def _date_colours(dates: list[datetime]) -> dict[datetime, str]:
    ordered = sorted(set(dates))
    if len(ordered) == 1:
        return {ordered[0]: sample_colorscale(DATE_SCALE, [0.0])[0]}
    fractions = [0.9 * i / (len(ordered) - 1) for i in range(len(ordered))]  # skip the pale yellow
    return dict(zip(ordered, sample_colorscale(DATE_SCALE, fractions), strict=True))


def arrhenius_figure(view: CalibrationView, cell: str) -> go.Figure:
    """BEP (log) vs 1000/T for each calibration of the cell, coloured by date: scan points and
    their fitted lines (solid), Fitting.txt lines (dashed)."""
    lines = view.lines.filter(pl.col("cell") == cell)
    points = view.points.filter(pl.col("cell") == cell)
    dates = [d for d in lines.get_column("taken_at").to_list() if d is not None]
    colours = _date_colours(dates) if dates else {}
    fig = go.Figure()
    for (taken_at, source), group in lines.group_by(["taken_at", "source"], maintain_order=True):
        colour = colours.get(taken_at, COLOURS["muted"])
        label = f"{_when(taken_at)} {source}"
        fig.add_trace(
            go.Scatter(
                x=group["inv_t_k"].to_list(), y=group["bep"].to_list(), mode="lines",
                line={"color": colour, "width": 2 if source == "scan" else 1.5,
                      "dash": "solid" if source == "scan" else "dash"},
                name=label, legendgroup=label, customdata=group["T_C"].to_list(),
                hovertemplate=f"{label}<br>%{{customdata:.0f}} °C: %{{y:.3e}} Torr<extra>fit</extra>",
            )
        )  # fmt: skip
        scan = points.filter(pl.col("taken_at") == taken_at) if source == "scan" else points.clear()
        if scan.height:
            fig.add_trace(
                go.Scatter(
                    x=scan["inv_t_k"].to_list(), y=scan["net_bep"].to_list(), mode="markers",
                    marker={"color": colour, "size": 7, "line": {"width": 1, "color": "white"}},
                    name=label, legendgroup=label, showlegend=False, customdata=scan["T_C"].to_list(),
                    hovertemplate=f"{label}<br>%{{customdata:.0f}} °C: %{{y:.3e}} Torr<extra>scan point</extra>",
                )
            )  # fmt: skip
    at = view.working_c.get(cell)
    if at is not None and cell not in DOPANTS:
        x = 1000.0 / (at + 273.15)
        fig.add_vline(x=x, line={"color": COLOURS["muted"], "dash": "dot", "width": 1})
        fig.add_annotation(x=x, y=1, yref="paper", text=f"working {at:.0f} °C", showarrow=False,
                           yanchor="bottom", font={"size": 11, "color": COLOURS["muted"]})  # fmt: skip
    style_figure(fig, height=360, uirevision=f"arrhenius-{cell}")
    fig.update_layout(
        title={"text": f"{cell}: Arrhenius history", "font": {"size": 15}},
        legend={"orientation": "v", "x": 1.02, "y": 1, "yanchor": "top", "font": {"size": 11}},
        margin={"t": 50, "r": 10},
    )
    fig.update_xaxes(title_text="1000 / T (1/K)   (hotter ←)")
    ticks = log_ticks([*lines["bep"].to_list(), *points["net_bep"].to_list()])
    fig.update_yaxes(title_text="net BEP (Torr)", type="log", tickvals=ticks,
                     ticktext=[f"{t:.1e}" for t in ticks])  # fmt: skip
    return fig


def drift_figure(view: CalibrationView, cell: str) -> go.Figure:
    """The cell's BEP at its working temperature by calibration, relative to the calibration in
    force (%), the tolerance band until the next recommended calibration, the fitted drift and
    the refills."""
    flux = view.flux.filter(pl.col("cell") == cell)
    compared = flux.filter(pl.col("compared"))
    reference = (compared if compared.height else flux)["bep_at"].to_list()[-1:]
    refills = view.refills.filter(pl.col("cell") == cell)
    fig = go.Figure()
    nxt = view.schedule.get(cell)
    if nxt is not None and nxt.last_at is not None and nxt.due_at is not None:
        _tolerance_band(fig, view, nxt)
    if reference:
        styles = (("calibration", True, "circle", "lines+markers"),
                  ("Fitting.txt", False, "circle-open", "markers"))  # fmt: skip
        for name, in_chain, symbol, mode in styles:
            part = flux.filter(pl.col("compared") == in_chain)
            if part.is_empty():
                continue
            x, bep = _broken_at(part["taken_at"].to_list(), part["bep_at"].to_list(), refills)
            fig.add_trace(
                go.Scatter(
                    x=x, y=[None if b is None else 100 * (b / reference[0] - 1) for b in bep],
                    mode=mode, name=name, customdata=bep,
                    marker={"symbol": symbol, "size": 9, "color": COLOURS["primary"]},
                    line={"color": COLOURS["primary"], "width": 1.5},
                    hovertemplate="%{x|%Y-%m-%d %H:%M}: %{y:+.2f} % (%{customdata:.3e} Torr)"
                    f"<extra>{name}</extra>",
                )
            )  # fmt: skip
    for r in refills.iter_rows(named=True):
        grams = f" {r['charge_g']:.0f} g" if r["charge_g"] else ""
        fig.add_shape(type="line", x0=r["installed_at"], x1=r["installed_at"], y0=0, y1=1,
                      yref="paper", line={"color": COLOURS["danger"], "width": 1.5, "dash": "dashdot"})  # fmt: skip
        fig.add_annotation(x=r["installed_at"], y=0, yref="paper", text=f"refill{grams}",
                           showarrow=False, yanchor="bottom", xanchor="left",
                           font={"size": 11, "color": COLOURS["danger"]})  # fmt: skip
    style_figure(fig, height=360, uirevision=f"drift-{cell}")
    at = view.working_c.get(cell, 0.0)
    fig.update_layout(title={"text": f"{cell}: flux at {at:.0f} °C over time", "font": {"size": 15}},
                      margin={"t": 80})  # fmt: skip
    fig.update_yaxes(title_text="BEP vs calibration in force (%)", zeroline=True,
                     zerolinecolor=COLOURS["muted"])  # fmt: skip
    fig.update_xaxes(title_text="calibration date (UTC)")
    return fig


def _broken_at(times: list[Any], values: list[Any], refills: pl.DataFrame) -> tuple[list[Any], list[Any]]:
    """The series with a gap (None) where a refill lies between two points: a new charge is
    another flux, so the line does not join the two."""
    cuts = sorted(refills.get_column("installed_at").to_list())
    x: list[Any] = []
    y: list[Any] = []
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        if i and any(times[i - 1] < cut <= t for cut in cuts):
            x.append(None)
            y.append(None)
        x.append(t)
        y.append(v)
    return x, y


def _tolerance_band(fig: go.Figure, view: CalibrationView, nxt: NextCalibration) -> None:
    """±tolerance from the last calibration to the next one, the fitted drift projected over it,
    and the next calibration as a star (red when overdue)."""
    tol = 100 * view.tolerance
    span = [nxt.last_at, nxt.due_at]
    fig.add_shape(type="rect", x0=span[0], x1=span[1], y0=-tol, y1=tol, line={"width": 0},
                  fillcolor=COLOURS["success"], opacity=0.12, layer="below")  # fmt: skip
    for y, first in ((tol, True), (-tol, False)):
        fig.add_trace(
            go.Scatter(x=span, y=[y, y], mode="lines", name=f"±{tol:.0f} % tolerance",
                       showlegend=first, legendgroup="tolerance", hoverinfo="skip",
                       line={"color": COLOURS["success"], "width": 1, "dash": "dot"})  # fmt: skip
        )
    assert nxt.last_at is not None and nxt.due_at is not None
    if nxt.rate_per_day is not None:
        days = (nxt.due_at - nxt.last_at).total_seconds() / 86400
        fig.add_trace(
            go.Scatter(
                x=[nxt.last_at + timedelta(days=days * i / 10) for i in range(11)],
                y=[100 * math.expm1(nxt.rate_per_day * days * i / 10) for i in range(11)],
                mode="lines", name="fitted drift",
                line={"color": COLOURS["warning"], "width": 2, "dash": "dash"},
                hovertemplate="%{x|%Y-%m-%d}: %{y:+.2f} %<extra>projected</extra>",
            )
        )  # fmt: skip
    colour = COLOURS["danger"] if nxt.overdue(view.now) else COLOURS["info"]
    fig.add_trace(
        go.Scatter(
            x=[nxt.due_at], y=[0], mode="markers+text", name="next calibration",
            marker={"symbol": "star", "size": 14, "color": colour},
            text=[f"next {_day(nxt.due_at)}"], textposition="top left",
            hovertemplate=f"next calibration %{{x|%Y-%m-%d %H:%M}}<br>{nxt.basis}<extra></extra>",
        )
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
def log_ticks(values: list[float], most: int = 8) -> list[float]:
    """Round tick values (1, 1.5, 2, 3, 4, 5, 7 × 10^k, thinned to at most `most`) inside the range
    of positive `values`: a BEP range within a decade gets readable ticks on a log axis."""
    positive = [v for v in values if v and v > 0]
    if not positive:
        return []
    low, high = min(positive), max(positive)
    for mantissas in ((1, 1.5, 2, 3, 4, 5, 7), (1, 2, 3, 5), (1, 2, 5), (1,)):
        ticks = [m * 10.0**k for k in range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 1)
                 for m in mantissas if low <= m * 10.0**k <= high]  # fmt: skip
        if len(ticks) <= most:
            return ticks
    return ticks


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "undated"


def _day(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d}" if moment else "-"


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    unit = unit.replace(" ", "\u00a0")  # a number and its unit stay on one line
    return "-" if value is None else f"{format(value, spec)}{unit}"
