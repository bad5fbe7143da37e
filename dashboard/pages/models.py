"""`/models`: the growth model's registry (versions, aliases, key metrics), the per-slice metrics
of a chosen version against the champion, its lineage, the promotion ledger, and promote /
rollback behind credentials with a confirmation step.

Thin: the data and the writes come from `epi_ml.views.models` (the registry's own calls).
Element ids (for browser tests): `models-version` (version picker), `models-registry-table`,
`models-slice` (tool / material / epoch), `models-slice-table`, `models-slice-figure`,
`models-lineage`, `models-lineage-runs` (links `a.lineage-run-link` to /runs/<run_id>),
`models-ledger-table`, `models-promote`, `models-rollback`, `models-write-hint`,
`models-confirm` (modal), `models-confirm-body`, `models-confirm-ok`, `models-confirm-cancel`,
`models-result` (the outcome alert), `models-empty` (no model yet).
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
import plotly.graph_objects as go
import polars as pl
from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from plotly.subplots import make_subplots

from dashboard.auth import WRITE_REFUSED, writer_or_refusal
from dashboard.components import (
    COLOURS,
    alias_badge,
    clipped,
    command,
    empty_state,
    graph,
    page_header,
    run_href,
    store_not_ready,
    style_figure,
    table,
)
from epi_ml.models.metrics import SLICES
from epi_ml.settings import Settings, get_settings
from epi_ml.store import engine_for
from epi_ml.views.models import (
    PROMOTE,
    ROLLBACK,
    ModelsView,
    apply_action,
    lineage_of,
    models_view,
    slice_metrics,
    when,
)

dash.register_page(__name__, path="/models", name="Models", title="epi-ml — models")

ACTION_COLOUR = {"promote": "success", "rollback": "warning", "gate_pass": "info", "gate_fail": "danger",
                 "challenger": "secondary"}  # fmt: skip


def _view(settings: Settings) -> ModelsView:
    return models_view(engine_for(settings.database_url))


def layout(version: str | None = None, **_query: str) -> html.Div:
    settings = get_settings()
    try:
        view = _view(settings)
    except Exception as exc:  # noqa: BLE001 - say what is wrong and what to do, never a blank page
        return html.Div([page_header("Models"), store_not_ready(settings, exc)])
    if view.empty:
        return html.Div(
            [
                page_header("Models"),
                empty_state(
                    "No model yet",
                    "No version of the growth model is registered: train one with ",
                    command("epi-ml train"),
                    " (it needs a training set: ",
                    command("epi-ml pipeline"),
                    "), or run ",
                    command("make demo"),
                    ".",
                    id="models-empty",
                ),
            ]
        )
    chosen = view.version(int(version) if version and version.isdigit() else None)
    assert chosen is not None
    can_write = bool(settings.dash_user and settings.dash_password)
    picker = dcc.Dropdown(id="models-version", options=_version_options(view), value=chosen.version,
                          clearable=False, style={"minWidth": "14rem"})  # fmt: skip
    promote_disabled, rollback_disabled = _disabled(view, chosen.version, can_write)
    actions = html.Div(
        [
            dbc.Button(f"Promote v{chosen.version}", id="models-promote", color="success",
                       disabled=promote_disabled, className="me-2"),  # fmt: skip
            dbc.Button(_rollback_label(view), id="models-rollback", color="warning", outline=True,
                       disabled=rollback_disabled, className="me-2"),  # fmt: skip
            html.Span(
                "" if can_write else WRITE_REFUSED,
                id="models-write-hint",
                className="text-muted small",
            ),
        ],
        className="mb-3 d-flex align-items-center flex-wrap",
    )
    modal = dbc.Modal(
        [
            dbc.ModalHeader(dbc.ModalTitle("Confirm")),
            dbc.ModalBody(id="models-confirm-body"),
            dbc.ModalFooter(
                [
                    dbc.Button("Cancel", id="models-confirm-cancel", color="secondary", outline=True),
                    dbc.Button("Confirm", id="models-confirm-ok", color="primary"),
                ]
            ),
        ],
        id="models-confirm",
        is_open=False,
    )
    slice_picker = dbc.RadioItems(
        id="models-slice",
        options=[{"label": s, "value": s} for s in SLICES],
        value=SLICES[0],
        inline=True,
    )
    return html.Div(
        [
            page_header(
                "Models",
                f"Registered versions of the {view.name} model, the gate's ledger and lineage",
                right=html.Div([html.Span("Version", className="me-2 text-muted"), clipped(picker)],
                               className="d-inline-flex align-items-center"),  # fmt: skip
            ),
            dcc.Store(id="models-refresh", data=0),
            dcc.Store(id="models-pending", data=None),
            actions,
            html.Div(id="models-result"),
            modal,
            html.H5("Registry"),
            html.Div(registry_section(view), id="models-registry"),
            html.H5("Metrics by slice", className="mt-3"),
            html.Div([html.Span("Slice by ", className="me-2 text-muted"), slice_picker],
                     className="d-flex align-items-center mb-2"),  # fmt: skip
            html.Div(slice_section(view, chosen.version, SLICES[0]), id="models-slices"),
            html.H5("Lineage", className="mt-3"),
            html.Div(lineage_section(view, chosen.version), id="models-lineage"),
            html.H5("Promotion ledger", className="mt-3"),
            html.Div(ledger_section(view), id="models-ledger"),
        ]
    )


# ---------------------------------------------------------------------------------------------
# Callbacks
@callback(
    Output("models-registry", "children"),
    Output("models-slices", "children"),
    Output("models-lineage", "children"),
    Output("models-ledger", "children"),
    Output("models-version", "options"),
    Output("models-promote", "children"),
    Output("models-promote", "disabled"),
    Output("models-rollback", "children"),
    Output("models-rollback", "disabled"),
    Input("models-version", "value"),
    Input("models-slice", "value"),
    Input("models-refresh", "data"),
    prevent_initial_call=True,
)
def refresh(version: int | None, slice_name: str | None, _refresh: int | None) -> tuple[Any, ...]:
    settings = get_settings()
    try:
        view = _view(settings)
    except Exception as exc:  # noqa: BLE001
        alert = store_not_ready(settings, exc)
        return alert, "", "", "", no_update, no_update, True, no_update, True
    chosen = view.version(version)
    if chosen is None:
        return ("",) * 4 + ([], "Promote", True, "Roll back", True)
    can_write = bool(settings.dash_user and settings.dash_password)
    promote_disabled, rollback_disabled = _disabled(view, chosen.version, can_write)
    return (
        registry_section(view),
        slice_section(view, chosen.version, slice_name or SLICES[0]),
        lineage_section(view, chosen.version),
        ledger_section(view),
        _version_options(view),
        f"Promote v{chosen.version}",
        promote_disabled,
        _rollback_label(view),
        rollback_disabled,
    )


@callback(
    Output("models-confirm", "is_open"),
    Output("models-confirm-body", "children"),
    Output("models-pending", "data"),
    Input("models-promote", "n_clicks"),
    Input("models-rollback", "n_clicks"),
    Input("models-confirm-cancel", "n_clicks"),
    State("models-version", "value"),
    prevent_initial_call=True,
)
def ask(_promote: int | None, _rollback: int | None, _cancel: int | None, version: int | None) -> tuple[Any, ...]:
    """The confirmation step: what the write will do, before it is done."""
    action = {"models-promote": PROMOTE, "models-rollback": ROLLBACK}.get(str(ctx.triggered_id))
    if action is None:  # cancel
        return False, no_update, None
    return True, confirm_text(_view(get_settings()), action, version), {"action": action, "version": version}


@callback(
    Output("models-result", "children"),
    Output("models-refresh", "data"),
    Output("models-confirm", "is_open", allow_duplicate=True),
    Input("models-confirm-ok", "n_clicks"),
    State("models-pending", "data"),
    State("models-refresh", "data"),
    prevent_initial_call=True,
)
def confirm(_ok: int | None, pending: dict[str, Any] | None, refreshed: int | None) -> tuple[Any, ...]:
    """The write, for the user whose credentials came with the request; refused without them."""
    alert, done = write(pending, get_settings())
    return alert, ((refreshed or 0) + 1) if done else no_update, False


def write(pending: dict[str, Any] | None, settings: Settings) -> tuple[dbc.Alert, bool]:
    """(the result alert, whether the registry changed) of a confirmed promote / rollback."""
    user, refusal = writer_or_refusal(settings)
    if user is None:
        return dbc.Alert(refusal, color="danger", dismissable=True, className="write-refused"), False
    if not pending or pending.get("action") not in (PROMOTE, ROLLBACK):
        return dbc.Alert("Nothing to confirm: choose Promote or Roll back.", color="secondary",
                         dismissable=True), False  # fmt: skip
    result = apply_action(engine_for(settings.database_url), pending["action"], pending.get("version"), user=user)
    colour = "success" if result.ok else "warning"
    return dbc.Alert(result.message, color=colour, dismissable=True, className="write-result"), result.ok


# ---------------------------------------------------------------------------------------------
# Sections
def _version_options(view: ModelsView) -> list[dict[str, Any]]:
    return [
        {"label": f"v{v.version}" + (f" ({', '.join(v.aliases)})" if v.aliases else ""), "value": v.version}
        for v in view.versions
    ]


def _disabled(view: ModelsView, version: int, can_write: bool) -> tuple[bool, bool]:
    is_champion = view.champion is not None and view.champion.version == version
    return (not can_write or is_champion), (not can_write or view.rollback_to is None)


def _rollback_label(view: ModelsView) -> str:
    if view.champion is None or view.rollback_to is None:
        return "Roll back"
    return f"Roll back to v{view.rollback_to}"


def confirm_text(view: ModelsView, action: str, version: int | None) -> Any:
    champion = f"v{view.champion.version}" if view.champion else "none"
    if action == PROMOTE:
        gate = view.table.filter(pl.col("version") == version).get_column("gate").to_list()
        warning = (
            [dbc.Alert("The gate refused this version (see its reasons in the ledger): promoting it "
                       "overrides the gate.", color="warning", className="small py-2")]  # fmt: skip
            if gate == ["failed"]
            else []
        )
        return html.Div(
            [
                html.P(["Make ", html.B(f"{view.name} v{version}"), f" the champion (now: {champion})?"]),
                *warning,
                html.P("The model in service changes at once; the ledger records who decided it.",
                       className="text-muted small mb-0"),  # fmt: skip
            ]
        )
    target = f"v{view.rollback_to}" if view.rollback_to else "nothing (no earlier champion)"
    return html.Div(
        [
            html.P(["Roll back the champion ", html.B(champion), " to ", html.B(target), "?"]),
            html.P("The ledger records the rollback and who decided it.", className="text-muted small mb-0"),
        ]
    )


def _pct(value: float | None, spec: str = ".2f", unit: str = " %") -> str:
    return "-" if value is None else f"{format(value, spec)}{unit}"


def registry_section(view: ModelsView) -> Any:
    rows = []
    for r in view.table.iter_rows(named=True):
        gate = r["gate"]
        rows.append({
            "version": html.B(f"v{r['version']}"),
            "created (UTC)": when(r["created_at"]),
            "aliases": [alias_badge(a) for a in r["aliases"]] or "",
            "gate": dbc.Badge(gate, color="success" if gate == "passed" else "danger") if gate else "-",
            "device": r["device"] or "-",
            "training runs": r["runs"],
            "raw files": r["files"],
            "features": r["features_version"] or "-",
            "thickness MAPE": _pct(r["thickness_mape_pct"]),
            "coverage (90 %)": _pct(None if r["thickness_coverage"] is None else 100 * r["thickness_coverage"], ".0f"),
            "composition MAE": _pct(r["composition_mae"], ".4f", ""),
            "eval layers": r["evaluation_layers"] if r["evaluation_layers"] is not None else "-",
        })  # fmt: skip
    note = html.Div("Metrics: each version on the evaluation epochs of its own training set.",
                    className="text-muted small")  # fmt: skip
    return [table(rows, id="models-registry-table", className="align-middle"), note]


def slice_section(view: ModelsView, version: int, slice_name: str) -> Any:
    chosen = view.version(version)
    assert chosen is not None
    frame = slice_metrics(chosen, view.champion, slice_name)
    if frame.is_empty():
        return html.P(f"v{chosen.version} has no per-{slice_name} metrics.", className="text-muted",
                      id="models-slice-table")  # fmt: skip
    label = {"chosen": f"v{chosen.version}"}
    if view.champion is not None:
        label["champion"] = f"champion v{view.champion.version}"
    rows = []
    for key in frame.get_column("key").unique(maintain_order=True).to_list():
        of_key = {r["role"]: r for r in frame.filter(pl.col("key") == key).iter_rows(named=True)}
        row: dict[str, Any] = {slice_name: key, "layers": of_key.get("chosen", {}).get("thickness_n", "-")}
        for role in ("chosen", "champion"):
            if role in of_key:
                r = of_key[role]
                row[f"thickness MAPE {label[role]}"] = _pct(r["thickness_mape_pct"])
                row[f"composition MAE {label[role]}"] = _pct(r["composition_mae"], ".4f", "")
            elif role in set(frame.get_column("role")):
                row[f"thickness MAPE {label[role]}"] = "-"
                row[f"composition MAE {label[role]}"] = "-"
        rows.append(row)
    return dbc.Row(
        [
            dbc.Col(table(rows, id="models-slice-table"), lg=5),
            dbc.Col(graph(slice_figure(frame, label, slice_name), id="models-slice-figure"), lg=7),
        ]
    )


def slice_figure(frame: pl.DataFrame, label: dict[str, str], slice_name: str) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("thickness MAPE (%)", "composition MAE"))
    colours = {"chosen": COLOURS["info"], "champion": COLOURS["primary"]}
    for role in ("chosen", "champion"):
        part = frame.filter(pl.col("role") == role)
        if part.is_empty():
            continue
        keys = part.get_column("key").to_list()
        fig.add_trace(go.Bar(x=keys, y=part["thickness_mape_pct"].to_list(), name=label[role],
                             marker_color=colours[role], legendgroup=role,
                             hovertemplate="%{x}: %{y:.2f} %<extra>" + label[role] + "</extra>"), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Bar(x=keys, y=part["composition_mae"].to_list(), name=label[role],
                             marker_color=colours[role], legendgroup=role, showlegend=False,
                             hovertemplate="%{x}: %{y:.4f}<extra>" + label[role] + "</extra>"), row=1, col=2)  # fmt: skip
    style_figure(fig, height=320, uirevision=f"slices-{slice_name}")
    fig.update_layout(barmode="group", margin={"t": 60})
    return fig


def lineage_section(view: ModelsView, version: int) -> Any:
    chosen = view.version(version)
    assert chosen is not None
    lineage = lineage_of(chosen)
    runs = html.Div(
        [
            dcc.Link(run_id, href=run_href(run_id), className="lineage-run-link me-2 badge bg-light text-dark")
            for run_id in lineage.runs
        ]
        or [html.Span("no runs recorded", className="text-muted")],
        id="models-lineage-runs",
        className="d-flex flex-wrap gap-1",
    )
    facts = [
        ("version", f"v{lineage.version}"),
        ("trained on", f"{len(lineage.runs)} runs, {lineage.layers.get('total', '-')} layers "
                       f"({', '.join(f'{k} {v}' for k, v in lineage.layers.items() if k != 'total')})"),
        ("raw files", f"{lineage.files} SHA-256 hashes"),
        ("code version", lineage.code_version or "-"),
        ("features version", lineage.features_version or "-"),
        ("device", lineage.device or "-"),
        ("training set", (lineage.training_set_sha256 or "-")[:16]),
        ("artifact", (lineage.artifact_sha256 or "-")[:16]),
    ]  # fmt: skip
    for part, epochs in lineage.epochs.items():
        facts.append((f"{part} epochs", ", ".join(epochs) or "-"))
    hp_rows = [{"hyper-parameter": k, "value": _hp(v)} for k, v in lineage.hyperparameters.items()]
    if lineage.search:
        summary = ", ".join(f"{k} {_hp(v)}" for k, v in lineage.search.items() if k != "best")
        hp_rows.append({"hyper-parameter": "search", "value": summary})
    hashes = html.Details(
        [html.Summary(f"{lineage.files} raw-file hashes"),
         html.Pre("\n".join(lineage.file_hashes), className="small mb-0", style={"maxHeight": "12rem"})],
    ) if lineage.file_hashes else ""  # fmt: skip
    return dbc.Card(
        dbc.CardBody(
            dbc.Row(
                [
                    dbc.Col(
                        [
                            html.Dl(
                                [item for k, v in facts for item in (html.Dt(k, className="col-sm-4"),
                                                                     html.Dd(v, className="col-sm-8"))],
                                className="row mb-2",
                            ),  # fmt: skip
                            html.Div("Training runs", className="text-muted small mb-1"),
                            runs,
                            html.Div(hashes, className="mt-2"),
                        ],
                        lg=7,
                    ),
                    dbc.Col(table(hp_rows, id="models-hyperparameters"), lg=5),
                ]
            )
        ),
        id="models-lineage-card",
    )


def _hp(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def ledger_section(view: ModelsView) -> Any:
    if view.ledger.is_empty():
        return html.P("The ledger is empty.", className="text-muted", id="models-ledger-table")
    rows = []
    for r in reversed(view.ledger.to_dicts()):  # newest first
        passed = r["passed"]
        rows.append({
            "time (UTC)": when(r["decided_at"]),
            "action": dbc.Badge(r["action"], color=ACTION_COLOUR.get(r["action"], "secondary")),
            "version": f"v{r['version']}",
            "previous": f"v{r['previous_version']}" if r["previous_version"] is not None else "-",
            "decided by": r["decided_by"],
            "passed": "-" if passed is None else ("yes" if passed else "no"),
            "reasons": html.Ul([html.Li(x) for x in r["reasons"]], className="mb-0 small ps-3")
            if r["reasons"] else "",
        })  # fmt: skip
    return table(rows, id="models-ledger-table", className="align-middle")
