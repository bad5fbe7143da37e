"""Prerequisites of tests: skipped locally when missing, a failure in CI (CI=true skips nothing)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, what: str, how: str) -> None:
    """Skip locally when a prerequisite is missing; fail loudly in CI (nothing may be skipped there)."""
    if condition:
        return
    message = f"{what} — {how}"
    if IN_CI:
        pytest.fail(f"CI prerequisite missing: {message}", pytrace=False)
    pytest.skip(message)
