"""`/`: what the store holds — tools, runs by status, the latest runs and ingests."""

from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.components import run_href, severity_badge, table
from epi_ml.overview import store_overview
from epi_ml.settings import get_settings
from epi_ml.store import engine_for, redact

dash.register_page(__name__, path="/", name="Overview", title="epi-ml — overview", order=0)


def _card(title: str, value: str) -> dbc.Col:
    return dbc.Col(
        dbc.Card(dbc.CardBody([html.Div(title, className="text-muted small"), html.H3(value)])), md=3
    )


def layout(**_query: str) -> html.Div:
    settings = get_settings()
    try:
        overview = store_overview(engine_for(settings.database_url))
    except Exception as exc:  # noqa: BLE001 - say what is wrong and what to do, never a blank page
        return dbc.Alert(
            [
                html.H5("The store is not ready"),
                html.P(f"{redact(settings.database_url)}: {type(exc).__name__}: {exc}"),
                html.P(["Run ", html.Code("epi-ml init"), " (or ", html.Code("make demo"), ")."]),
            ],
            color="warning",
        )
    cards = dbc.Row(
        [
            _card("Tools", str(len(overview.tools))),
            _card("Growth runs", str(overview.n_runs)),
            _card("Quarantined runs", str(overview.runs_by_status.get("quarantined", 0))),
            _card("Quarantined files", str(overview.ingest_by_status.get("quarantined", 0))),
        ],
        className="g-3 mb-3",
    )
    if not overview.latest_runs:
        waiting = sum(1 for p in settings.landing_dir.rglob("*") if p.is_file())
        body = dbc.Alert(
            [
                "No growth runs in the store yet. ",
                f"{waiting} tool log files are waiting in {settings.landing_dir}. " if waiting else "",
                "Simulate a campaign with ",
                html.Code("epi-ml simulate --out DIR"),
                " or run ",
                html.Code("make demo"),
                ".",
            ],
            color="info",
        )
    else:
        rows = [
            {**r, "run": dcc.Link(r["run"], href=run_href(str(r["run"])))}
            for r in overview.latest_runs
        ]
        body = html.Div(
            [
                table(rows, id="overview-latest-runs"),
                dcc.Link("All runs →", href="/runs", id="overview-all-runs"),
            ]
        )
    return html.Div(
        [html.H4("Overview"), cards, html.H5("Latest runs"), body, _findings(overview.latest_findings)]
    )


def _findings(rows: list[dict[str, object]]) -> html.Div:
    """The newest runs' errors and warnings, each opening its run's findings."""
    if not rows:
        body: object = html.P("No errors or warnings in the latest runs.", className="text-muted")
    else:
        body = table(
            [
                {
                    "run": dcc.Link(str(r["run"]), href=run_href(str(r["run"])) + "#findings"),
                    "severity": severity_badge(str(r["severity"])),
                    "code": r["code"],
                    "channel": r["channel"],
                    "message": r["message"],
                }
                for r in rows
            ]
        )
    return html.Div([html.H5("Latest findings", className="mt-3"), body], id="overview-findings")

