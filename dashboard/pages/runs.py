"""`/runs`: every growth run in a sortable, filterable grid (its id links to its run page), and
one channel of several runs overlaid on time since each run's start.

Query strings prefill the filters: `/runs?tool=MBE1&status=validated&recipe=...&spec=fail`
(comma-separated values). All reading is in epi_ml.views.runs.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html, no_update

from dashboard.components import (
    empty_state,
    graph,
    page_header,
    run_href,
    store_not_ready,
    style_figure,
)
from epi_ml.settings import get_settings
from epi_ml.store import engine_for
from epi_ml.views import runs as view

dash.register_page(__name__, path="/runs", name="Runs", title="epi-ml — runs", order=2)

OVERLAY_DEFAULT_CHANNELS = ("sub.T", "Ga.T", "RHEED.I", "P.chamber")
OVERLAY_DEFAULT_RUNS = 3
MAX_OVERLAY_RUNS = 12

COLUMNS: list[dict[str, Any]] = [
    {"field": "run", "headerName": "Run", "cellRenderer": "markdown", "minWidth": 190,
     "filter": "agTextColumnFilter", "pinned": "left"},
    {"field": "tool", "headerName": "Tool", "maxWidth": 110},
    {"field": "started", "headerName": "Started (UTC)", "minWidth": 160, "sort": "desc"},
    {"field": "duration_min", "headerName": "Minutes", "filter": "agNumberColumnFilter", "maxWidth": 120},
    {"field": "recipe", "headerName": "Recipe", "minWidth": 170},
    {"field": "status", "headerName": "Status", "maxWidth": 140,
     "cellClassRules": {"text-danger fw-bold": "params.value == 'quarantined'",
                        "text-success": "params.value == 'validated'"}},
    {"field": "layers", "headerName": "Layers", "filter": "agNumberColumnFilter", "maxWidth": 110},
    {"field": "errors", "headerName": "Errors", "filter": "agNumberColumnFilter", "maxWidth": 110,
     "cellClassRules": {"text-danger fw-bold": "params.value > 0"}},
    {"field": "warnings", "headerName": "Warnings", "filter": "agNumberColumnFilter", "maxWidth": 120,
     "cellClassRules": {"text-warning fw-bold": "params.value > 0"}},
    {"field": "spec", "headerName": "Spec", "maxWidth": 140,
     "tooltipField": "spec_detail",
     "cellClassRules": {"text-danger fw-bold": "params.value == 'fail'",
                        "text-success fw-bold": "params.value == 'pass'",
                        "text-muted": "params.value == 'not measured'"}},
    {"field": "spec_detail", "headerName": "Measured layers", "minWidth": 200},
]  # fmt: skip


def _split(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def layout(tool: str | None = None, status: str | None = None, recipe: str | None = None,
           spec: str | None = None, **_query: str) -> Any:  # fmt: skip
    settings = get_settings()
    try:
        engine = engine_for(settings.database_url)
        table = view.runs_table(engine)
        channels = view.channel_names(engine)
    except Exception as exc:  # noqa: BLE001 - say what is wrong, never a blank page
        return store_not_ready(settings, exc)
    header = page_header(
        "Growth runs",
        f"{table.height} runs in the store · spec: {view.DEFAULT_LIMITS.text} (XRD vs target)",
    )
    if table.is_empty():
        return html.Div(
            [
                header,
                empty_state(
                    "No growth runs yet",
                    "Ingest tool logs (", html.Code("epi-ml ingest DIR"), "), simulate a campaign (",
                    html.Code("epi-ml simulate --out DIR"), ") or run ", html.Code("make demo"), ".",
                    id="runs-empty",
                ),
            ]
        )  # fmt: skip
    options = view.filter_options(table)
    chosen = view.RunFilters(tools=_split(tool), statuses=_split(status), recipes=_split(recipe),
                             specs=_split(spec))  # fmt: skip
    shown = view.filter_runs(table, chosen)
    filters = dbc.Row(
        [
            _dropdown("runs-filter-tool", "Tool", options.tools, chosen.tools),
            _dropdown("runs-filter-status", "Status", options.statuses, chosen.statuses),
            _dropdown("runs-filter-recipe", "Recipe", options.recipes, chosen.recipes),
            _dropdown("runs-filter-spec", "Spec", list(view.SPEC_VERDICTS), chosen.specs),
            dbc.Col(
                [
                    dbc.Label("Started between (UTC)", html_for="runs-filter-dates", className="small mb-0"),
                    dcc.DatePickerRange(
                        id="runs-filter-dates",
                        min_date_allowed=options.first_day,
                        max_date_allowed=options.last_day,
                        initial_visible_month=options.last_day,
                        display_format="YYYY-MM-DD",
                        clearable=True,
                    ),
                ],
                md=3,
            ),
        ],
        className="g-2 mb-2 align-items-end",
    )
    grid = dag.AgGrid(
        id="runs-grid",
        rowData=view.grid_rows(shown, run_href),
        columnDefs=COLUMNS,
        defaultColDef={"sortable": True, "filter": True, "resizable": True, "floatingFilter": True,
                       "flex": 1, "minWidth": 100},  # fmt: skip
        getRowId="params.data.run_id",
        dashGridOptions={
            "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": True,
                             "enableClickSelection": False},
            "pagination": True,
            "paginationPageSize": 25,
            "paginationPageSizeSelector": [25, 50, 100, 500],
            "tooltipShowDelay": 200,
            "animateRows": False,
        },  # fmt: skip
        style={"height": "560px", "width": "100%"},
    )
    default_channel = next((c for c in OVERLAY_DEFAULT_CHANNELS if c in channels), None)
    default_channel = default_channel or (channels[0] if channels else None)
    first_runs = shown.get_column("run_id").head(OVERLAY_DEFAULT_RUNS).to_list()
    overlay = dbc.Card(
        dbc.CardBody(
            [
                html.H5("Overlay", className="card-title"),
                html.P(
                    "Tick runs in the table (or pick them here) and a channel: each run is drawn on "
                    f"time since its start, at most {view.MAX_OVERLAY_POINTS} points per run "
                    "(min/max per bucket, so spikes stay).",
                    className="text-muted small",
                ),
                dbc.Row(
                    [
                        dbc.Col(
                            dcc.Dropdown(
                                id="runs-overlay-runs",
                                options=_run_options(shown),
                                value=first_runs,
                                multi=True,
                                placeholder="runs to overlay",
                            ),
                            md=8,
                        ),
                        dbc.Col(
                            dcc.Dropdown(
                                id="runs-overlay-channel",
                                options=[{"label": c, "value": c} for c in channels],
                                value=default_channel,
                                clearable=False,
                                placeholder="channel",
                            ),
                            md=4,
                        ),
                    ],
                    className="g-2 mb-2",
                ),
                html.Div(id="runs-overlay-missing", className="small text-muted"),
                dcc.Loading(
                    graph(_overlay_figure(settings, first_runs, default_channel), id="runs-overlay-graph"),
                    type="default",
                ),
            ]
        ),
        className="mt-3",
    )
    return html.Div(
        [
            header,
            filters,
            html.Div(_count_text(shown.height, table.height), id="runs-count",
                     className="small text-muted mb-1"),  # fmt: skip
            grid,
            overlay,
        ]
    )


def _dropdown(id: str, label: str, values: list[str], chosen: Any) -> dbc.Col:
    return dbc.Col(
        [
            dbc.Label(label, html_for=id, className="small mb-0"),
            dcc.Dropdown(id=id, options=[{"label": v, "value": v} for v in values],
                         value=list(chosen), multi=True, placeholder="all"),  # fmt: skip
        ],
        md=2,
    )


def _run_options(table: Any) -> list[dict[str, str]]:
    return [
        {"label": f"{r['run_id']} · {r['recipe']}", "value": r["run_id"]}
        for r in table.select("run_id", "recipe").iter_rows(named=True)
    ]


def _count_text(shown: int, total: int) -> str:
    return f"{shown} of {total} runs" if shown != total else f"{total} runs"


@callback(
    Output("runs-grid", "rowData"),
    Output("runs-count", "children"),
    Output("runs-overlay-runs", "options"),
    Input("runs-filter-tool", "value"),
    Input("runs-filter-status", "value"),
    Input("runs-filter-recipe", "value"),
    Input("runs-filter-spec", "value"),
    Input("runs-filter-dates", "start_date"),
    Input("runs-filter-dates", "end_date"),
    prevent_initial_call=True,
)
def filter_grid(tools, statuses, recipes, specs, start, end):  # type: ignore[no-untyped-def]
    table = view.runs_table(engine_for(get_settings().database_url))
    shown = view.filter_runs(
        table,
        view.RunFilters(tools=tools or (), statuses=statuses or (), recipes=recipes or (),
                        specs=specs or (), start=_day(start), end=_day(end)),  # fmt: skip
    )
    return view.grid_rows(shown, run_href), _count_text(shown.height, table.height), _run_options(shown)


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value[:10]) if value else None


@callback(
    Output("runs-overlay-runs", "value"),
    Input("runs-grid", "selectedRows"),
    prevent_initial_call=True,
)
def overlay_selected(rows):  # type: ignore[no-untyped-def]
    if not rows:
        return no_update
    return [r["run_id"] for r in rows][:MAX_OVERLAY_RUNS]


@callback(
    Output("runs-overlay-graph", "figure"),
    Output("runs-overlay-missing", "children"),
    Input("runs-overlay-runs", "value"),
    Input("runs-overlay-channel", "value"),
    prevent_initial_call=True,
)
def draw_overlay(run_ids, channel):  # type: ignore[no-untyped-def]
    settings = get_settings()
    run_ids = list(run_ids or [])[:MAX_OVERLAY_RUNS]
    if not channel:
        return _figure(None), ""
    overlay = view.overlay_channel(settings, engine_for(settings.database_url), run_ids, channel)
    return _figure(overlay), _missing(overlay)


def _overlay_figure(settings: Any, run_ids: list[str], channel: str | None) -> go.Figure:
    if not channel or not run_ids:
        return _figure(None)
    return _figure(view.overlay_channel(settings, engine_for(settings.database_url), run_ids, channel))


def _missing(overlay: view.Overlay | None) -> str:
    return "Not drawn: " + "; ".join(overlay.missing) if overlay and overlay.missing else ""


def _figure(overlay: view.Overlay | None) -> go.Figure:
    fig = go.Figure()
    if overlay is not None:
        for trace in overlay.traces:
            fig.add_trace(
                go.Scattergl(
                    x=trace.t_s / 60.0, y=trace.values, mode="lines", name=trace.run_id,
                    hovertemplate="%{x:.1f} min: %{y:.4g}<extra>" + trace.run_id + "</extra>",
                )  # fmt: skip
            )
        unit = f" ({overlay.unit})" if overlay.unit else ""
        fig.update_layout(xaxis_title="minutes since run start", yaxis_title=f"{overlay.channel}{unit}")
        if overlay.unit == "Torr":
            fig.update_yaxes(type="log", exponentformat="e")
    if not fig.data:
        fig.add_annotation(text="pick runs and a channel", showarrow=False, x=0.5, y=0.5,
                           xref="paper", yref="paper", font={"size": 16, "color": "#95a5a6"})  # fmt: skip
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
    return style_figure(fig, height=420, uirevision=overlay.channel if overlay else None)
