"""`/runs/<run_id>`: one growth run — header and links (its Dagster partition, its raw files),
its layers as targeted, measured (XRD) and predicted (with the 90 % interval and the model
version used), its validation findings placed in the run, and every raw file it came from.

All reading is in epi_ml.views.runs; this page only lays it out.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, clientside_callback, dcc, html
from plotly.subplots import make_subplots

from dashboard.components import (
    COLOURS,
    dagster_partition_href,
    empty_state,
    graph,
    page_header,
    severity_badge,
    stat_card,
    status_badge,
    store_not_ready,
    style_figure,
)
from epi_ml.settings import get_settings
from epi_ml.store import engine_for
from epi_ml.views import runs as view


def _title(run_id: str | None = None, **_: Any) -> str:
    return f"epi-ml — run {run_id}" if run_id else "epi-ml — run"


dash.register_page(__name__, path_template="/runs/<run_id>", name="Run", title=_title)

SPEC_COLOUR = {view.PASS: "success", view.FAIL: "danger", view.NOT_MEASURED: "secondary"}
INTERVAL_COLOUR = "rgba(52, 152, 219, 0.45)"  # the theme's info blue, lighter: intervals behind points
FILE_STATUS_COLOUR = {"accepted": "success", "accepted_with_warnings": "warning",
                      "quarantined": "danger", "skipped": "secondary"}  # fmt: skip


def layout(run_id: str | None = None, **_query: str) -> Any:
    settings = get_settings()
    run_id = run_id or ""
    try:
        detail = view.run_detail(settings, engine_for(settings.database_url), run_id)
    except Exception as exc:  # noqa: BLE001 - say what is wrong, never a blank page
        return store_not_ready(settings, exc)
    if detail is None:
        return empty_state(
            f"No run {run_id}",
            "The store holds no growth run with this id — see ",
            dcc.Link("/runs", href="/runs", id="run-not-found-link"),
            " for the runs it has.",
            id="run-not-found",
        )
    h = detail.header
    growth = detail.layers.filter(pl.col("kind") == "layer")
    return html.Div(
        [
            page_header(
                f"Run {h.run_id}",
                f"{h.tool} · {h.recipe or 'no recipe'} · {_span(h.started_at, h.ended_at)}",
                right=html.Div(status_badge(h.status), id="run-status", className="fs-5"),
            ),
            _links(settings, detail),
            dbc.Row(
                [
                    dbc.Col(stat_card("Layers", str(growth.height), detail=_plural(
                        detail.layers.height - growth.height, "interrupt")), md=3),  # fmt: skip
                    dbc.Col(_spec_card(detail), md=3),
                    dbc.Col(_findings_card(h), md=3),
                    dbc.Col(stat_card("Prediction", detail.model.label, detail=detail.model.source), md=3),
                ],
                className="g-3 mb-3",
            ),
            _facts(detail),
            _layers_section(detail),
            _findings_section(detail),
            _raw_files_section(detail),
            dcc.Store(id="run-scroll"),
        ],
        id="run-page",
    )


# A link to /runs/<id>#findings (or #layer-3, #raw-files) lands before the page is drawn: scroll
# to its target once it is.
clientside_callback(
    """function(_) {
        const target = decodeURIComponent(window.location.hash.slice(1));
        if (target) {
            setTimeout(() => {
                const el = document.getElementById(target);
                if (el) { el.scrollIntoView(); }
            }, 50);
        }
        return window.dash_clientside.no_update;
    }""",
    Output("run-scroll", "data"),
    Input("run-page", "id"),
)


# ---------------------------------------------------------------------------------------------
def _span(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return "no start logged"
    if end is None:
        return f"{start:%Y-%m-%d %H:%M:%S} UTC → (no end logged yet)"
    end_text = f"{end:%H:%M:%S}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M:%S}"
    return f"{start:%Y-%m-%d %H:%M:%S} → {end_text} UTC ({_duration(start, end)})"


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "—"
    return f"{math.floor((end - start).total_seconds() / 60 + 0.5):d} min"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _clock(seconds: float | None) -> str:
    """Time since the run's start as h:mm:ss (or m:ss)."""
    if seconds is None:
        return ""
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    h, rest = divmod(int(round(seconds)), 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{h}:{m:02d}:{s:02d}" if h else f"{sign}{m}:{s:02d}"


def _links(settings: Any, detail: view.RunDetail) -> html.Div:
    h = detail.header
    return html.Div(
        [
            dbc.Button("Open partition in Dagster", href=dagster_partition_href(settings, h.run_id),
                       target="_blank", external_link=True, color="primary", size="sm",
                       id="run-dagster-link", className="me-2"),  # fmt: skip
            _anchor_button("Layers", "#run-layers", "run-layers-link"),
            _anchor_button(f"Findings ({len(detail.findings)})", "#run-findings", "run-findings-link"),
            _anchor_button(f"Raw files ({detail.raw_files.height})", "#run-raw-files", "run-raw-files-link"),
            dcc.Link("← all runs", href="/runs", className="ms-2", id="run-back-link"),
        ],
        className="mb-3",
        id="run-links",
    )


def _anchor_button(text: str, href: str, id: str) -> dbc.Button:
    return dbc.Button(text, href=href, external_link=True, color="secondary", outline=True,
                      size="sm", className="me-2", id=id)  # fmt: skip


def _findings_card(h: view.RunHeader) -> dbc.Card:
    colour = "danger" if h.n_errors else ("warning" if h.n_warnings else None)
    text = f"{_plural(h.n_errors, 'error')} · {_plural(h.n_warnings, 'warning')}"
    return stat_card("Findings", text, colour=colour)


def _spec_card(detail: view.RunDetail) -> dbc.Card:
    judged = detail.layers.filter(pl.col("in_spec").is_not_null())
    out = judged.filter(~pl.col("in_spec")).height
    spec = detail.spec
    text = (f"{judged.height - out}/{judged.height} measured layers in spec" if judged.height
            else "no XRD result with a target yet")  # fmt: skip
    return stat_card("Spec", spec, detail=text, colour=SPEC_COLOUR[spec] if spec != view.NOT_MEASURED else None)


def _facts(detail: view.RunDetail) -> html.Div:
    h = detail.header
    facts = [
        ("Tool", h.tool), ("Recipe", h.recipe or "—"),
        ("Started", f"{h.started_at:%Y-%m-%d %H:%M:%S} UTC" if h.started_at else "—"),
        ("Ended", f"{h.ended_at:%Y-%m-%d %H:%M:%S} UTC" if h.ended_at else "—"),
        ("Duration", _duration(h.started_at, h.ended_at)),
        ("Segmented by", h.segmented_by), ("Operator", h.operator or "—"), ("Wafer", h.wafer or "—"),
        ("Campaign", h.campaign or "—"),
    ]  # fmt: skip
    for kind, value in sorted(detail.run_measurements.items()):
        facts.append((kind.replace("_", " "), f"{value:.2f}"))
    return html.Div(
        [html.Span([html.Span(k + ": ", className="text-muted"), html.Span(v)], className="me-4 d-inline-block")
         for k, v in facts],  # fmt: skip
        className="small mb-3",
        id="run-facts",
    )


# ---------------------------------------------------------------------------------------------
# Layers
def _layers_section(detail: view.RunDetail) -> html.Div:
    model = detail.model
    note_colour = {"champion": "info", "newest": "warning", "physics": "secondary"}[model.source]
    return html.Div(
        [
            html.Span(id="layers"),
            html.H5("Layers", className="mt-2"),
            dbc.Alert(
                [html.Strong("Predicted: "), model.note,
                 ". Intervals are the model's 90 % conformal intervals." if model.version is not None else ""],
                color=note_colour, className="py-2 small", id="run-model-note",
            ),  # fmt: skip
            graph(_layers_figure(detail), id="run-layers-figure"),
            _layers_table(detail),
        ],
        id="run-layers",
        className="mb-4",
    )


MARKERS = {
    "target": {"symbol": "line-ew-open", "size": 22, "color": COLOURS["primary"], "line": {"width": 3}},
    "xrd": {"symbol": "circle", "size": 9, "color": COLOURS["success"]},
    "pred": {"symbol": "diamond", "size": 9, "color": COLOURS["info"]},
}


def _points(x: list[str], y: Any, series: str, name: str, *, legend: bool = True,
            error: dict[str, Any] | None = None) -> go.Scatter:  # fmt: skip
    values = y.to_list() if isinstance(y, pl.Series) else y
    return go.Scatter(x=x, y=values, mode="markers", name=name, legendgroup=series, showlegend=legend,
                      marker=MARKERS[series], error_y=error)  # fmt: skip


def _bars(up: pl.Series, down: pl.Series | None = None, colour: str = INTERVAL_COLOUR) -> dict[str, Any]:
    """Error bars: `up` above (and `down` below, else the same) each point."""
    bars: dict[str, Any] = {"type": "data", "array": up.to_list(), "color": colour, "thickness": 1.5}
    if down is not None:
        bars.update(symmetric=False, arrayminus=down.to_list())
    return bars


def _layers_figure(detail: view.RunDetail) -> go.Figure:
    """Per growth layer with a target: thickness (target, XRD, predicted with its interval), the
    deviation from target in % against the spec band, and the composition of ternaries."""
    layers = detail.layers
    rows = layers.filter((pl.col("kind") == "layer") & pl.col("target_thickness_nm").is_not_null())
    ternary = rows.filter(pl.col("target_composition").is_not_null())
    n = 3 if not ternary.is_empty() else 2
    titles = ["thickness (nm)", "thickness vs target (%)", "composition x"][:n]
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.07, subplot_titles=titles)
    if rows.is_empty():
        fig.add_annotation(text="no growth layer with a thickness target", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper")  # fmt: skip
        return style_figure(fig, height=300)

    def names(frame: pl.DataFrame) -> list[str]:
        return [f"{r['layer']} {r['label'] or r['material']}" for r in frame.iter_rows(named=True)]

    x, pred = names(rows), f"predicted ({detail.model.label})"
    interval = detail.model.version is not None
    t = rows.get_column("target_thickness_nm")
    p, lo, hi = (rows.get_column(c) for c in
                 ("pred_thickness_nm", "pred_thickness_lower_nm", "pred_thickness_upper_nm"))  # fmt: skip
    xrd_bars = _bars(rows.get_column("xrd_thickness_nm_unc"), colour=COLOURS["success"])
    fig.add_trace(_points(x, t, "target", "target"), row=1, col=1)
    fig.add_trace(_points(x, rows.get_column("xrd_thickness_nm"), "xrd", "measured (XRD)", error=xrd_bars),
                  row=1, col=1)  # fmt: skip
    fig.add_trace(_points(x, p, "pred", pred, error=_bars(hi - p, p - lo) if interval else None), row=1, col=1)
    fig.update_yaxes(type="log", tickvals=_log_ticks(rows), row=1, col=1)

    tol = detail.limits.thickness_rel * 100
    fig.add_hrect(y0=-tol, y1=tol, fillcolor=COLOURS["success"], opacity=0.12, line_width=0, row=2, col=1)
    fig.add_hline(y=0, line={"color": COLOURS["primary"], "width": 1}, row=2, col=1)
    xrd_pct = (rows.get_column("xrd_thickness_nm") / t - 1.0) * 100.0
    fig.add_trace(_points(x, xrd_pct, "xrd", "measured (XRD)", legend=False), row=2, col=1)
    pct_bars = _bars((hi - p) / t * 100.0, (p - lo) / t * 100.0) if interval else None
    fig.add_trace(_points(x, (p / t - 1.0) * 100.0, "pred", pred, legend=False, error=pct_bars), row=2, col=1)

    if n == 3:
        tx = names(ternary)
        px, plo, phi = (ternary.get_column(c) for c in
                        ("pred_composition", "pred_composition_lower", "pred_composition_upper"))  # fmt: skip
        fig.add_trace(_points(tx, ternary.get_column("target_composition"), "target", "target", legend=False),
                      row=3, col=1)  # fmt: skip
        x_bars = _bars(ternary.get_column("xrd_composition_unc"), colour=COLOURS["success"])
        fig.add_trace(_points(tx, ternary.get_column("xrd_composition"), "xrd", "measured (XRD)",
                              legend=False, error=x_bars), row=3, col=1)  # fmt: skip
        p_bars = _bars(phi - px, px - plo) if interval else None
        fig.add_trace(_points(tx, px, "pred", pred, legend=False, error=p_bars), row=3, col=1)
    # keep the recipe's order on the shared category axis
    fig.update_xaxes(categoryorder="array", categoryarray=x)
    return style_figure(fig, height=260 * n + 60)


def _log_ticks(rows: pl.DataFrame) -> list[float]:
    """1-2-5 ticks over the thicknesses shown (plotly's own log ticks abbreviate to '2', '5')."""
    values = pl.concat([rows.get_column(c).drop_nulls() for c in
                        ("target_thickness_nm", "xrd_thickness_nm", "pred_thickness_nm")])  # fmt: skip
    values = values.filter(values > 0)
    if values.is_empty():
        return []
    lo, hi = float(values.min()), float(values.max())  # type: ignore[arg-type]
    ticks = [m * 10.0**e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5)]  # fmt: skip
    return [t for t in ticks if lo / 2.5 <= t <= hi * 2.5]


def _num(value: Any, digits: int = 1) -> str:
    return view.fmt(value, digits)


def _with_unc(value: Any, unc: Any, digits: int) -> str:
    if value is None:
        return ""
    return f"{value:.{digits}f} ± {unc:.{digits}f}" if unc is not None else f"{value:.{digits}f}"


def _interval(lo: Any, hi: Any, digits: int) -> str:
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]" if lo is not None and hi is not None else ""


def _layers_table(detail: view.RunDetail) -> dbc.Table:
    start = detail.header.started_at
    head = html.Thead(
        [
            html.Tr(
                [html.Th("#", rowSpan=2), html.Th("step", rowSpan=2), html.Th("material", rowSpan=2),
                 html.Th("starts", rowSpan=2), html.Th("thickness (nm)", colSpan=5, className="text-center"),
                 html.Th("composition x", colSpan=4, className="text-center"), html.Th("spec", rowSpan=2)]
            ),
            html.Tr(
                [html.Th("target"), html.Th("XRD"), html.Th("predicted"), html.Th("90 % interval"),
                 html.Th("XRD vs target"), html.Th("target"), html.Th("XRD"), html.Th("predicted"),
                 html.Th("90 % interval")]
            ),
        ]
    )  # fmt: skip
    body = []
    for r in detail.layers.iter_rows(named=True):
        interrupt = r["kind"] != "layer"
        since = (r["started_at"] - start).total_seconds() if r["started_at"] and start else None
        if r["in_spec"] is None:
            spec: Any = html.Span("—" if interrupt else "not measured", className="text-muted small")
        else:
            spec = dbc.Badge(view.PASS if r["in_spec"] else view.FAIL,
                             color="success" if r["in_spec"] else "danger")  # fmt: skip
        error = r["thickness_error_pct"]
        error_cell = html.Td(
            f"{error:+.2f} %" if error is not None else "",
            className=("text-danger fw-bold" if r["thickness_ok"] is False else ""),
        )
        body.append(
            html.Tr(
                [
                    html.Td(r["layer"]), html.Td(r["label"] or ""), html.Td(r["material"]),
                    html.Td(_clock(since),
                            title=f"{r['started_at']:%H:%M:%S} UTC" if r["started_at"] else None),
                    html.Td(_num(r["target_thickness_nm"], 1)),
                    html.Td(_with_unc(r["xrd_thickness_nm"], r["xrd_thickness_nm_unc"], 1)),
                    html.Td(_num(r["pred_thickness_nm"], 1)),
                    html.Td(_interval(r["pred_thickness_lower_nm"], r["pred_thickness_upper_nm"], 1)),
                    error_cell,
                    html.Td(_num(r["target_composition"], 3)),
                    html.Td(_with_unc(r["xrd_composition"], r["xrd_composition_unc"], 3),
                            className="text-danger fw-bold" if r["composition_ok"] is False else ""),
                    html.Td(_num(r["pred_composition"], 3)),
                    html.Td(_interval(r["pred_composition_lower"], r["pred_composition_upper"], 3)),
                    html.Td(spec),
                ],
                id=f"layer-{r['layer']}",
                className="text-muted" if interrupt else "",
            )
        )  # fmt: skip
    return dbc.Table([head, html.Tbody(body)], striped=True, hover=True, size="sm", responsive=True,
                     id="run-layers-table", className="mt-2")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Findings
def _findings_section(detail: view.RunDetail) -> html.Div:
    if not detail.findings:
        body: Any = html.P("No findings: the run's data passed every validation rule.",
                           className="text-muted", id="run-findings-empty")  # fmt: skip
    else:
        body = dbc.ListGroup([_finding_item(f) for f in detail.findings], id="run-findings-list")
    return html.Div([html.Span(id="findings"), html.H5("Validation findings"), body], id="run-findings",
                    className="mb-4")  # fmt: skip


def _finding_item(f: view.FindingRow) -> dbc.ListGroupItem:
    where: list[Any] = []
    if f.channel:
        where.append(html.Code(f.channel, className="me-2"))
    if f.file:
        where.append(html.Span(f"{f.file}" + (f" line {f.line}" if f.line else ""), className="me-2 small"))
    if f.start is not None:
        span = f"{f.start:%H:%M:%S}" + (f"–{f.end:%H:%M:%S}" if f.end else "") + " UTC"
        where.append(html.Span(f"at {_clock(f.t_s)} ({span})", className="me-2 small"))
    if f.layer is not None:
        where.append(html.A(f"in layer {f.layer_label or f.layer}", href=f"#layer-{f.layer}",
                            className="small finding-layer-link"))  # fmt: skip
    return dbc.ListGroupItem(
        [
            html.Div(
                [severity_badge(f.severity), html.Strong(f.code, className="me-2"), *where,
                 html.Span(f" ×{f.count}", className="small text-muted") if f.count > 1 else None]
            ),
            html.Div(f.message),
            html.Div(f.hint, className="small text-muted") if f.hint else None,
        ],
        className="run-finding",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Raw files
def _raw_files_section(detail: view.RunDetail) -> html.Div:
    files = detail.raw_files
    if files.is_empty():
        body: Any = html.P("No raw file in the store names this run or overlaps it.", className="text-muted")
    else:
        head = html.Thead(html.Tr([html.Th(c) for c in
                                   ("file", "kind", "format", "size", "status", "span (UTC)", "read by the run",
                                    "why listed", "findings", "")]))  # fmt: skip
        rows = []
        for r in files.iter_rows(named=True):
            span = ""
            if r["time_start"] and r["time_end"]:
                span = f"{r['time_start']:%Y-%m-%d %H:%M} – {r['time_end']:%H:%M}"
            rows.append(
                html.Tr(
                    [
                        html.Td(html.Span(r["name"], title=r["original_path"])),
                        html.Td(r["kind"] or "—"), html.Td(r["format"]),
                        html.Td(view.human_size(r["size_bytes"])),
                        html.Td(dbc.Badge(r["status"], color=FILE_STATUS_COLOUR.get(r["status"], "secondary"))),
                        html.Td(span), html.Td("yes" if r["used"] else "no"),
                        html.Td(r["why"], className="small"),
                        html.Td(str(r["n_findings"]) if r["n_findings"] else ""),
                        html.Td(html.A("download", href=r["href"], className="raw-file-link",
                                       title=f"raw bytes of {r['name']} as received")),
                    ],
                    id=f"raw-file-{r['event_id']}",
                )
            )  # fmt: skip
        body = dbc.Table([head, html.Tbody(rows)], striped=True, hover=True, size="sm", responsive=True,
                         id="run-raw-files-table")  # fmt: skip
    return html.Div(
        [html.Span(id="raw-files"), html.H5(f"Raw files ({files.height})"),
         html.P("Every file received that names the run, overlaps it on its tool, or holds its "
                "measurements — downloaded as received (the archive never changes them).",
                className="text-muted small"), body],
        id="run-raw-files",
        className="mb-4",
    )  # fmt: skip
