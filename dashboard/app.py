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
            dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"]))
            for page in dash.page_registry.values()
        ],
    )
    app.layout = html.Div([nav, dbc.Container(dash.page_container, fluid=True, className="pt-3")])
    return app
