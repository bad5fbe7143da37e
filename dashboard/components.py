"""Pieces every page uses: headers, empty states, the store-not-ready alert, figure styling, links.

One place for the look: pages build their content from these so a control-room screen sees the
same fonts, colours and empty states everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import dash_bootstrap_components as dbc
from dash import dcc, html

from epi_ml.settings import Settings
from epi_ml.store import redact

# Colours of the Flatly theme (dashboard/assets/bootstrap-flatly.min.css), reused in figures.
COLOURS = {
    "primary": "#2c3e50",
    "success": "#18bc9c",
    "info": "#3498db",
    "warning": "#f39c12",
    "danger": "#e74c3c",
    "muted": "#95a5a6",
}
SEVERITY_COLOUR = {"error": "danger", "warning": "warning", "info": "info"}
FIGURE_FONT = {"family": "Lato, -apple-system, 'Segoe UI', sans-serif", "size": 14}


def page_header(title: str, subtitle: str | None = None, *, right: Any = None) -> html.Div:
    """The page's title row (and something on the right, e.g. a tool picker)."""
    left = [html.H3(title, className="mb-0")]
    if subtitle:
        left.append(html.Div(subtitle, className="text-muted"))
    return dbc.Row(
        [dbc.Col(left, md=8), dbc.Col(right, md=4, className="text-md-end")]
        if right is not None
        else [dbc.Col(left)],
        className="mb-3 align-items-end",
    )


def empty_state(title: str, *body: Any, id: str | None = None) -> dbc.Alert:
    """What a page shows when there is nothing to show: what is missing and what to do."""
    kwargs = {"id": id} if id else {}
    return dbc.Alert(
        [html.H5(title, className="alert-heading"), html.P(list(body), className="mb-0")],
        color="info",
        className="empty-state",
        **kwargs,
    )


def store_not_ready(settings: Settings, exc: BaseException) -> dbc.Alert:
    """The store cannot be read: say where, why and what to do (never a blank page)."""
    return dbc.Alert(
        [
            html.H5("The store is not ready", className="alert-heading"),
            html.P(f"{redact(settings.database_url)}: {type(exc).__name__}: {exc}"),
            html.P(["Run ", html.Code("epi-ml init"), " (or ", html.Code("make demo"), ")."]),
        ],
        color="warning",
        className="store-not-ready",
    )


def stat_card(title: str, value: str, *, detail: str | None = None, colour: str | None = None) -> dbc.Card:
    body = [html.Div(title, className="text-muted small"), html.H3(value, className="mb-0")]
    if detail:
        body.append(html.Div(detail, className="small text-muted"))
    return dbc.Card(dbc.CardBody(body), color=colour, outline=bool(colour))


def severity_badge(severity: str) -> dbc.Badge:
    return dbc.Badge(severity, color=SEVERITY_COLOUR.get(severity, "secondary"), className="me-1")


def status_badge(status: str) -> dbc.Badge:
    colour = {
        "validated": "success",
        "ingested": "success",
        "live": "info",
        "open": "secondary",
        "landed": "secondary",
        "quarantined": "danger",
    }.get(status, "secondary")
    return dbc.Badge(status, color=colour)


def style_figure(fig: Any, *, height: int | None = None, uirevision: str | None = None) -> Any:
    """Plot styling shared by every figure: white background, the theme's font, tight margins, and
    `uirevision` so a user's zoom survives data updates."""
    fig.update_layout(
        template="plotly_white",
        font=FIGURE_FONT,
        margin={"l": 60, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        uirevision=uirevision or "keep",
    )
    if height:
        fig.update_layout(height=height)
    return fig


def graph(figure: Any, *, id: str | dict[str, Any] | None = None, **kwargs: Any) -> dcc.Graph:
    kwargs.setdefault("config", {"displaylogo": False, "responsive": True})
    if id is not None:
        kwargs["id"] = id
    return dcc.Graph(figure=figure, **kwargs)


def run_href(run_id: str) -> str:
    """The run page of a run (pages/run.py serves /runs/<run_id>)."""
    return f"/runs/{quote(run_id, safe='')}"


def dagster_partition_href(settings: Settings, run_id: str, asset: str = "run_summary") -> str:
    """The run's partition in the Dagster UI (materialize, rerun, see its checks): the asset
    page's partitions view with the partition selected, as the UI's own links make it."""
    return (
        f"{settings.dagster_url.rstrip('/')}/assets/{quote(asset)}"
        f"?view=partitions&partition={quote(run_id, safe='')}"
    )


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, **kwargs: Any) -> dbc.Table:
    """A plain striped table of dicts (cells may be Dash components, e.g. links or badges)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    head = html.Thead(html.Tr([html.Th(c) for c in columns]))
    body = html.Tbody([html.Tr([html.Td(row.get(c, "")) for c in columns]) for row in rows])
    kwargs.setdefault("striped", True)
    kwargs.setdefault("hover", True)
    kwargs.setdefault("size", "sm")
    kwargs.setdefault("responsive", True)
    return dbc.Table([head, body], **kwargs)


def clipped(component: Any) -> html.Div:
    """A dcc.Dropdown wrapped so that its hidden, absolutely placed focus input (Dash 4, ~200 px
    wide, right of the control) cannot widen the page when the control sits at the right edge;
    `overflow-x: clip` keeps the menu, which opens downwards, visible."""
    return html.Div(component, style={"overflowX": "clip", "overflowY": "visible"})


def alias_badge(alias: str) -> dbc.Badge:
    """A model alias: the champion (in service) and the challenger (a candidate)."""
    colour = {"champion": "success", "challenger": "info"}.get(alias, "secondary")
    return dbc.Badge(alias, color=colour, className="me-1", pill=True)


def command(text: str) -> html.Code:
    """A shell command inside an alert or empty state: dark on light, readable on any colour."""
    return html.Code(text, className="text-dark bg-light px-1 rounded")
