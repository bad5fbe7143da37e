"""Who may write. Reading is open on localhost; an action that writes (promote, rollback, rerun)
needs the basic-auth credentials configured (EPI_ML_DASH_USER / EPI_ML_DASH_PASSWORD) and sent
with the request. When they are configured the whole app asks for them (dashboard.app), so a
request that reaches a callback has passed; without them every write is refused with what to do.
"""

from __future__ import annotations

import base64
import hmac

from flask import has_request_context, request

from epi_ml.settings import Settings

WRITE_REFUSED = (
    "Writing actions need credentials: set EPI_ML_DASH_USER and EPI_ML_DASH_PASSWORD where the "
    "dashboard runs, restart it and sign in."
)


def request_user(settings: Settings) -> str | None:
    """The user whose valid basic-auth credentials came with the current request, else None."""
    if not (settings.dash_user and settings.dash_password) or not has_request_context():
        return None
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    ok = hmac.compare_digest(user, settings.dash_user) and hmac.compare_digest(
        password, settings.dash_password.get_secret_value()
    )
    return user if ok else None


def writer_or_refusal(settings: Settings) -> tuple[str | None, str | None]:
    """(user, None) when this request may write, else (None, why not and what to do)."""
    user = request_user(settings)
    return (user, None) if user else (None, WRITE_REFUSED)
