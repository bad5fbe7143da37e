"""`/live`: the run in progress on a tool, moving every second.

One interval drives one callback. The first tick of a run draws its trailing window; every later
tick appends only the samples stored since (extendData, at most MAX_POINTS per trace), so an
update stays the same size at the end of a 6-hour run as at its start: RHEED every tick, the
other figures once per 1/SCREEN_HZ. Every figure spans the same trailing HISTORY_S of the run:
each trace keeps the points of that window at its channel's rate (view.trace_caps), and the
shutters' timeline follows the window (a clientside relayout, until the user zooms it). The
layers chart and the findings are small and are redrawn every few ticks. All reading is in
epi_ml.views.live.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from dashboard.components import (
    COLOURS,
    empty_state,
    page_header,
    run_href,
    severity_badge,
    stat_card,
    store_not_ready,
    style_figure,
)
from epi_ml.settings import get_settings
from epi_ml.store import engine_for
from epi_ml.views import live as view

dash.register_page(__name__, path="/live", name="Live", title="epi-ml — live", order=1)

# Four times a second: with the tailer's 0.1 s polls a sample is drawn within about a second of
# being logged (p95, bench_dashboard), and a tick costs the server a few ms. ?interval_ms=N
# (>= 100) for another screen.
TICK_MS = 250
SLOW_EVERY = 6  # ticks between redraws of the layers chart, cards and findings (1.5 s)
# WebGL where a trace keeps thousands of points (RHEED at full rate); the 2 Hz channels (1,200
# points a trace) draw faster as SVG wherever the browser has no GPU (measured: bench_dashboard).
WEBGL = {"rheed"}
HEIGHTS = {"shutters": 240, "rheed": 320}
DEFAULT_HEIGHT = 360
GRAPH_IDS = {g.key: f"live-{g.key}" for g in view.GROUPS}


def layout(tool: str | None = None, interval_ms: str | None = None, **_query: str) -> Any:
    settings = get_settings()
    try:
        engine = engine_for(settings.database_url)
        tools = view.live_tools(engine)
    except Exception as exc:  # noqa: BLE001 - say what is wrong, never a blank page
        return store_not_ready(settings, exc)
    try:
        tick_ms = max(100, int(interval_ms)) if interval_ms else TICK_MS
    except ValueError:
        tick_ms = TICK_MS
    chosen = tool if tool in tools else (tools[0] if tools else None)
    picker = dbc.Select(
        id="live-tool",
        options=[{"label": t, "value": t} for t in tools] or [{"label": "no tool yet", "value": ""}],
        value=chosen or "",
        style={"maxWidth": "12rem", "display": "inline-block"},
    )
    graphs = [
        dbc.Col(
            dcc.Graph(
                id=GRAPH_IDS[g.key],
                figure=_empty_figure(g),
                config={"displaylogo": False, "responsive": True},
                style={"height": f"{HEIGHTS.get(g.key, DEFAULT_HEIGHT)}px"},
            ),
            lg=6 if g.key not in ("shutters", "other") else 12,
            id=f"{GRAPH_IDS[g.key]}-col",
        )
        for g in view.GROUPS
    ]
    return html.Div(
        [
            page_header("Live", "The run in progress, updated four times a second", right=picker),
            dcc.Interval(id="live-tick", interval=tick_ms, n_intervals=0),
            dcc.Store(id="live-state", data={}),  # small, every tick: run, cursor, newest
            dcc.Store(id="live-layout", data={}),  # sent when it changes: traces of each figure
            dcc.Store(id="live-follow"),  # (output of the clientside window-follow, unused)
            html.Div(id="live-empty"),
            html.Div(
                [
                    html.Div(id="live-status", className="mb-2"),
                    dbc.Row(id="live-cards", className="g-3 mb-3"),
                    dbc.Row(
                        [
                            dbc.Col(
                                dcc.Graph(id="live-layers", figure=_layers_figure([], ""),
                                          config={"displaylogo": False}),  # fmt: skip
                                lg=8,
                            ),
                            dbc.Col(
                                [html.H5("Findings on the live data"), html.Div(id="live-findings")],
                                lg=4,
                            ),
                        ],
                        className="mb-3",
                    ),
                    dbc.Row(graphs, className="g-2"),
                ],
                id="live-body",
            ),
        ]
    )


@callback(
    [Output(GRAPH_IDS[g.key], "figure") for g in view.GROUPS]
    + [Output(GRAPH_IDS[g.key], "extendData") for g in view.GROUPS]
    + [
        Output("live-state", "data"),
        Output("live-layout", "data"),
        Output("live-status", "children"),
        Output("live-empty", "children"),
        Output("live-body", "style"),
        Output("live-cards", "children"),
        Output("live-layers", "figure"),
        Output("live-findings", "children"),
    ],
    Input("live-tick", "n_intervals"),
    Input("live-tool", "value"),
    State("live-state", "data"),
    State("live-layout", "data"),
    State("live-tick", "interval"),
    # a slow tick disables the interval until it returns: ticks never pile up
    running=[(Output("live-tick", "disabled"), True, False)],
)
def tick(n: int, tool: str | None, state: dict[str, Any] | None,
         layout: dict[str, Any] | None = None, tick_ms: int | None = None) -> list[Any]:  # fmt: skip
    groups = view.GROUPS
    keep: list[Any] = [no_update] * len(groups)
    settings = get_settings()
    engine = engine_for(settings.database_url)
    state, layout = state or {}, layout or {}
    run = view.current_run(engine, tool or None)
    if run is None:
        hint = empty_state(
            "No run in progress",
            "Start one with ",
            html.Code("epi-ml live --out .epi-ml/landing/twin --tool MBE1 --speed 10"),
            " (the digital twin) while ",
            html.Code("epi-ml serve"),
            " (or ",
            html.Code("epi-ml tail"),
            ") follows the landing folder; the run appears here within a second.",
            id="live-no-run",
        )
        return keep + keep + [{}, {}, None, hint, {"display": "none"}, [], no_update, no_update]

    fresh = state.get("run_id") != run.run_id or state.get("tool") != tool
    held: dict[str, float] = {} if fresh else dict(layout.get("held", {}))
    caps: dict[str, int] = {} if fresh else dict(layout.get("caps", {}))
    caps_checked_ms = None if fresh else layout.get("caps_checked_ms")
    n = n or 0
    if fresh:
        samples = view.snapshot(engine, run.run_id, tool_id=run.tool_id)
        signature = _signature(samples.channels)
        _hold(held, signature, samples)
        caps = dict(samples.caps)
        figures = [_figure(g, signature[g.key], samples) for g in groups]
        extends = keep
        slow_cursor, slow_tick = samples.cursor, n
        drawn_until = samples.newest.timestamp() * 1000 if samples.newest else None
    else:
        # the full-rate figures (RHEED) every tick, the others once per SCREEN_HZ period: each
        # redraw costs the browser, and their points come at SCREEN_HZ anyway
        slow_due = n - int(state.get("slow_tick", 0)) >= _slow_ticks(tick_ms)
        cursor, slow_cursor = int(state.get("cursor", 0)), int(state.get("slow_cursor", 0))
        drawn_until = state.get("drawn_until_ms")
        samples = view.updates(engine, run.run_id, cursor, slow_cursor if slow_due else None, drawn_until)
        slow_tick = n if slow_due and samples.newest else int(state.get("slow_tick", 0))
        if slow_due:
            slow_cursor = samples.cursor
            if samples.newest:
                drawn_until = samples.newest.timestamp() * 1000
        shown = [slow_due or g.key in view.FULL_RATE_GROUPS for g in groups]
        signature = layout.get("signature", {})
        new_signature = _signature(samples.channels, signature)
        if new_signature != signature:  # a channel appeared: draw its figure again from a snapshot
            snap = view.snapshot(engine, run.run_id, tool_id=run.tool_id)
            signature = _signature(snap.channels, new_signature)
            _hold(held, signature, snap)
            caps |= snap.caps
            figures = [
                _figure(g, signature[g.key], snap) if signature[g.key] != layout["signature"].get(g.key)
                else no_update
                for g in groups
            ]  # fmt: skip
        else:
            figures = keep
        if slow_due and samples.newest:
            caps, caps_checked_ms = _learn_caps(
                engine, run.run_id, signature, caps, caps_checked_ms, samples.newest
            )
        extends = [
            _extend(signature[g.key], samples, _held(g, held), caps) if show and f is no_update else no_update
            for g, f, show in zip(groups, figures, shown, strict=True)
        ]
    newest = samples.newest or _parse(state.get("newest"))
    new_state = {
        "run_id": run.run_id,
        "tool": tool,
        "cursor": samples.cursor if samples.cursor else state.get("cursor", 0),
        "slow_cursor": slow_cursor,
        "slow_tick": slow_tick,
        "drawn_until_ms": drawn_until,
        "newest": newest.isoformat() if newest else None,
        "points": int(state.get("points", 0)) + samples.points,
    }
    status = _status(run, newest, new_state["points"])
    parts_due = fresh or n % SLOW_EVERY == 0  # (not the slow figures: cards, layers, findings)
    if parts_due:
        cards, layers_fig, findings = _slow_parts(engine, run, newest)
    else:
        cards, layers_fig, findings = no_update, no_update, no_update
    new_layout = {
        "signature": signature,
        "held": held,
        "caps": caps,
        "caps_checked_ms": caps_checked_ms,
        "started_ms": run.started_at.timestamp() * 1000 if run.started_at else None,
    }
    layout_out = new_layout if fresh or new_layout != layout else no_update
    return figures + extends + [new_state, layout_out, status, None, {}, cards, layers_fig, findings]


# ------------------------------------------------------------------------------------------------
def _slow_ticks(tick_ms: int | None) -> int:
    """Ticks per SCREEN_HZ period (2 at the default 250 ms)."""
    return max(1, round(1000 / view.SCREEN_HZ / (tick_ms or TICK_MS)))


def _signature(channels: dict[str, Any], base: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """The channels of each figure, in trace order: traces are only ever added at the end."""
    out = {g.key: list((base or {}).get(g.key, [])) for g in view.GROUPS}
    for channel in sorted(channels):
        group = view.group_of(channel)
        if channel not in out[group]:
            out[group].append(channel)
    return out


def _figure(group: view.ChannelGroup, channels: list[str], samples: view.Samples) -> go.Figure:
    fig = go.Figure()
    scatter = go.Scattergl if group.key in WEBGL else go.Scatter
    newest_ms = samples.newest.timestamp() * 1000 if samples.newest else None
    for k, channel in enumerate(channels):
        series = samples.channels.get(channel, view.Series())
        if group.key == "shutters":
            t_ms, values = series.t_ms, series.values
            if newest_ms is not None and values and values[-1] is not None and t_ms[-1] < newest_ms:
                t_ms, values = [*t_ms, newest_ms], [*values, values[-1]]  # the state holds until now
            fig.add_trace(
                go.Scatter(x=t_ms, y=[_shutter_y(k, v) for v in values],
                           name=channel, mode="lines", line={"shape": "hv", "width": 2})  # fmt: skip
            )
        else:
            fig.add_trace(
                scatter(x=series.t_ms, y=series.values, name=view.label_of(channel), mode="lines")
            )
    fig.update_xaxes(type="date")
    title = f"{group.title}" + (f" [{group.unit}]" if group.unit else "")
    fig.update_layout(title={"text": title, "font": {"size": 15}})
    if group.log_y:
        fig.update_yaxes(type="log", exponentformat="e")
    if group.key == "shutters":
        fig.update_yaxes(
            tickvals=[k + 0.4 for k in range(len(channels))],
            ticktext=channels,
            range=[-0.2, max(1, len(channels))],
            showgrid=False,
        )
        fig.update_layout(showlegend=False)
    if not channels:
        fig.add_annotation(text="no channel of this kind yet", showarrow=False, xref="paper",
                           yref="paper", x=0.5, y=0.5)  # fmt: skip
    style_figure(fig, height=HEIGHTS.get(group.key, DEFAULT_HEIGHT), uirevision=group.key)
    # many channels: the legend goes under the plot, where it cannot cover the title
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.18, "x": 0, "font": {"size": 11}},
        margin={"t": 36, "b": 20},
    )
    return fig


def _empty_figure(group: view.ChannelGroup) -> go.Figure:
    return _figure(group, [], view.Samples(cursor=0, channels={}, newest=None))


def _hold(held: dict[str, float], signature: dict[str, list[str]], samples: view.Samples) -> None:
    """The last state of each shutter in `samples` (what the timeline draws on until it changes)."""
    for channel in signature["shutters"]:
        series = samples.channels.get(channel)
        if series and series.values and series.values[-1] is not None:
            held[channel] = series.values[-1]


def _held(group: view.ChannelGroup, held: dict[str, float]) -> dict[str, float] | None:
    return held if group.key == "shutters" else None


def _shutter_y(k: int, value: float | None) -> float | None:
    return None if value is None else k + 0.8 * (1.0 if value >= 0.5 else 0.0)


def _learn_caps(engine: Any, run_id: str, signature: dict[str, list[str]], caps: dict[str, int],
                checked_ms: float | None, newest: datetime) -> tuple[dict[str, int], float | None]:  # fmt: skip
    """Caps of the channels drawn before their rate was known (a run just started, a channel
    just appeared): looked up at most once per RATE_SPAN_S of the run."""
    unknown = [c for key, chans in signature.items() if key != "shutters" for c in chans if c not in caps]
    newest_ms = newest.timestamp() * 1000
    if not unknown or (checked_ms is not None and newest_ms - checked_ms < view.RATE_SPAN_S * 1000):
        return caps, checked_ms
    return caps | view.recent_caps(engine, run_id, newest), newest_ms


def _extend(channels: list[str], samples: view.Samples, held: dict[str, float] | None = None,
            caps: dict[str, int] | None = None) -> Any:  # fmt: skip
    """extendData for one figure: [update, trace indices, max points per trace], or no_update.
    `held`: the last state of event-driven channels (shutters), drawn on to the newest sample's
    time (and updated in place), since their logs only say when they change. `caps`: points
    each channel's trace keeps (view.trace_caps; else its group's max_points)."""
    xs, ys, idx = [], [], []
    newest_ms = samples.newest.timestamp() * 1000 if samples.newest else None
    for k, channel in enumerate(channels):
        series = samples.channels.get(channel)
        t_ms, values = (series.t_ms, series.values) if series else ([], [])
        if held is not None:
            if values and values[-1] is not None:
                held[channel] = values[-1]
            if newest_ms is not None and channel in held and (not t_ms or t_ms[-1] < newest_ms):
                t_ms, values = [*t_ms, newest_ms], [*values, held[channel]]
            values = [_shutter_y(k, v) for v in values]
        if not t_ms:
            continue
        xs.append(t_ms)
        ys.append(values)
        idx.append(k)
    if not idx:
        return no_update
    most = view.max_points(view.group_of(channels[idx[0]]))
    kept = [(caps or {}).get(channels[k], most) for k in idx]
    return [{"x": xs, "y": ys}, idx, kept[0] if len(set(kept)) == 1 else {"x": kept, "y": kept}]


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _status(run: view.LiveRun, newest: datetime | None, points: int) -> Any:
    state = "growing" if run.growing else f"ended {run.ended_at:%H:%M:%S}Z" if run.ended_at else run.status
    elapsed = ""
    if run.started_at and newest:
        minutes, seconds = divmod(int((newest - run.started_at).total_seconds()), 60)
        elapsed = f" · {minutes // 60}:{minutes % 60:02d}:{seconds:02d} since start"
    age = ""
    if newest:
        lag = (datetime.now(UTC) - newest).total_seconds()
        age = f" · newest sample {newest:%H:%M:%S}Z" + (f" ({lag:.0f} s ago)" if 0 <= lag < 86_400 else "")
    return html.Div(
        [
            dbc.Badge(state, color="info" if run.growing else "secondary", className="me-2"),
            html.A(run.run_id, href=run_href(run.run_id), id="live-run-link", className="fw-bold me-2"),
            html.Span(f"{run.tool_id} · {run.recipe_name or 'no recipe named'}{elapsed}{age}"),
            html.Span(f" · {points:,} points", id="live-points", className="text-muted"),
        ]
    )


def _slow_parts(engine: Any, run: view.LiveRun, newest: datetime | None) -> tuple[Any, Any, Any]:
    from epi_ml.ingest.batch import open_context

    ctx = open_context(get_settings())
    plan = view.layer_plan(ctx, run)
    layers = view.layer_progress(view.run_layers(engine, run.run_id), plan, newest)
    growing = next((layer for layer in layers if layer.growing), None)
    rate = view.live_growth_rate(engine, run.run_id, growing, newest)
    findings = view.live_findings(engine, run.run_id)
    grown_total = sum(layer.grown_nm or 0.0 for layer in layers)
    target_total = sum(layer.target_thickness_nm or 0.0 for layer in layers)
    rate_text = "—"
    if rate is not None and getattr(rate, "oscillating", False) and rate.rate_nm_s:
        rate_text = f"{rate.rate_um_h:.3f} µm/h"
    elif rate is not None:
        rate_text = f"no oscillation ({rate.reason_code})"
    current = "between layers"
    if growing:
        current = f"{growing.index} {growing.material}" + (f" ({growing.label})" if growing.label else "")
    cards = [
        dbc.Col(stat_card("Layer growing", current), md=3),
        dbc.Col(stat_card("Grown so far", f"{grown_total:,.1f} nm",
                          detail=f"of {target_total:,.1f} nm targeted in {len(layers)} layers"), md=3),  # fmt: skip
        dbc.Col(stat_card("RHEED growth rate", rate_text, detail="oscillations of the layer growing"), md=3),
        dbc.Col(
            stat_card("Live findings", str(len(findings)), colour="warning" if findings else None),
            md=3,
        ),
    ]
    return cards, _layers_figure(layers, plan.source), _findings_list(run, findings)


@functools.cache
def _layers_layout() -> dict[str, Any]:
    """The layers chart's styled layout, built once: the chart is redrawn every few ticks and
    plotly's figure validation would cost more than everything else a tick does."""
    fig = style_figure(go.Figure(), height=340, uirevision="layers")
    fig.update_layout(barmode="group", legend={"orientation": "h", "yanchor": "top", "y": -0.15, "x": 0})
    return fig.to_plotly_json()["layout"]


def _layers_figure(layers: list[view.LayerProgress], source: str) -> dict[str, Any]:
    """Target, predicted final (with its interval) and grown so far, per growth layer begun."""
    names = [f"{layer.index} {layer.material}" for layer in layers]

    def error(layer: view.LayerProgress, side: str) -> float | None:
        bound = layer.upper_nm if side == "upper" else layer.lower_nm
        if layer.predicted_nm is None or bound is None:
            return None
        return abs(bound - layer.predicted_nm)

    data = [
        {"type": "bar", "x": names, "y": [layer.target_thickness_nm for layer in layers],
         "name": "target", "marker": {"color": COLOURS["muted"]}},
        {"type": "bar", "x": names, "y": [layer.predicted_nm for layer in layers],
         "name": "predicted final", "marker": {"color": COLOURS["info"]},
         "error_y": {"type": "data", "visible": True, "array": [error(lay, "upper") for lay in layers],
                     "arrayminus": [error(lay, "lower") for lay in layers]}},
        {"type": "bar", "x": names, "y": [layer.grown_nm for layer in layers],
         "name": "grown so far", "marker": {"color": COLOURS["success"]}},
    ]  # fmt: skip
    layout = dict(_layers_layout())
    layout["title"] = {"text": f"Layers: thickness [nm] — {source}" if source else "Layers", "font": {"size": 15}}
    if not layers:
        layout["annotations"] = [{"text": "no layer started yet", "showarrow": False, "xref": "paper",
                                  "yref": "paper", "x": 0.5, "y": 0.5}]  # fmt: skip
    return {"data": data, "layout": layout}


def _findings_list(run: view.LiveRun, findings: list[Any]) -> Any:
    if not findings:
        return html.P("No findings so far.", className="text-muted", id="live-no-findings")
    items = []
    for f in findings[:20]:
        when = f" at {f.start:%H:%M:%S}Z" if f.start else ""
        items.append(
            dbc.ListGroupItem(
                [
                    severity_badge(f.severity.value),
                    html.Strong(f.code, className="me-1"),
                    html.Span(f"{f.channel or ''}{when}: ", className="text-muted"),
                    html.Span(f.message),
                    html.Div(html.A("open the run", href=run_href(run.run_id) + "#findings",
                                    className="small live-finding-link")),  # fmt: skip
                ]
            )
        )
    return dbc.ListGroup(items, flush=True, id="live-findings-list")


# The shutters' timeline holds few points (a state lasts until it changes), so no cap gives it the
# other figures' window: it follows [newest drawn - HISTORY_S (or the run's start), newest drawn]
# on each slow redraw, until the user zooms or pans it; a double-click (autorange) makes it
# follow again.
clientside_callback(
    """function(state, layout) {
        const dc = window.dash_clientside;
        const end = state && state.drawn_until_ms;
        const gd = document.querySelector('#%(graph)s .js-plotly-plot');
        if (!end || !gd || !gd._fullLayout || gd._epiFollowEnd === end) { return dc.no_update; }
        if (!gd._epiFollowing) {
            gd._epiFollowing = true;
            gd.on('plotly_relayout', (ev) => {
                if (gd._epiSetting) { return; }
                if (ev['xaxis.autorange']) { gd._epiZoomed = false; gd._epiFollowEnd = null; }
                else if ('xaxis.range[0]' in ev || 'xaxis.range' in ev) { gd._epiZoomed = true; }
            });
        }
        if (gd._epiZoomed) { return dc.no_update; }
        gd._epiFollowEnd = end;
        gd._epiSetting = true;
        const start = Math.max(end - %(history_ms)d, (layout && layout.started_ms) || 0);
        Promise.resolve(Plotly.relayout(gd, {'xaxis.range': [start, end]}))
            .finally(() => { gd._epiSetting = false; });
        return dc.no_update;
    }"""
    % {"graph": GRAPH_IDS["shutters"], "history_ms": int(view.HISTORY_S * 1000)},
    Output("live-follow", "data"),
    Input("live-state", "data"),
    State("live-layout", "data"),
)
