"""The Dash app: multi-page (one module per page under dashboard/pages), thin over epi_ml.

Binds to localhost by default. Listening on any other interface requires basic-auth credentials
(EPI_ML_DASH_USER / EPI_ML_DASH_PASSWORD); the app refuses to start exposed without them.
"""

from __future__ import annotations

import ipaddress
import socket

import dash
import dash_bootstrap_components as dbc
from dash import Dash, html

from epi_ml.settings import Settings, get_settings


class ExposedWithoutCredentials(RuntimeError):
    pass


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (socket.gaierror, ValueError):
        return False


def create_app(settings: Settings | None = None, *, host: str = "127.0.0.1") -> Dash:
    settings = settings or get_settings()
    app = Dash(
        __name__,
        use_pages=True,
        pages_folder="pages",
        # The Bootstrap theme is served from dashboard/assets/: control rooms have no internet.
        title="epi-ml",
        suppress_callback_exceptions=True,
        update_title=None,  # no "Updating..." flicker in the tab title every second
    )
    if settings.dash_user and settings.dash_password:
        import dash_auth

        dash_auth.BasicAuth(
            app, {settings.dash_user: settings.dash_password.get_secret_value()}
        )
    elif not is_loopback(host):
        raise ExposedWithoutCredentials(
            f"refusing to serve the dashboard on {host} without credentials: set "
            "EPI_ML_DASH_USER and EPI_ML_DASH_PASSWORD, or bind to 127.0.0.1"
        )
    nav = dbc.NavbarSimple(
        brand="epi-ml",
        brand_href="/",
        color="primary",
        dark=True,
        children=[
            dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact"))
            for page in dash.page_registry.values()
            if not page.get("path_template")  # a run's page is reached from the runs, not the bar
        ],
        fluid=True,
    )
    app.layout = html.Div([nav, dbc.Container(dash.page_container, fluid=True, className="pt-3")])
    register_file_route(app, settings)
    return app


def register_file_route(app: Dash, settings: Settings) -> None:
    """`/files/<event_id>`: the raw bytes of an ingest event, read-only, as a download. Only files
    inside the home's archive or quarantine folders are served (epi_ml.views.runs.raw_file_path);
    anything else, or an unknown id, is a 404."""
    from flask import abort, send_file

    from epi_ml.store import engine_for
    from epi_ml.views.runs import raw_file_path

    @app.server.route("/files/<int:event_id>")
    def raw_file(event_id: int):  # type: ignore[no-untyped-def]
        path = raw_file_path(settings, engine_for(settings.database_url), event_id)
        if path is None:
            abort(404)
        return send_file(path, as_attachment=True, download_name=path.name, max_age=0)

    @app.server.route("/files/", defaults={"rest": ""})
    @app.server.route("/files/<path:rest>")
    def no_file(rest: str):  # type: ignore[no-untyped-def]
        abort(404)  # anything but an event id (a path, `..`): never the pages' catch-all
