"""The fast EPIC row formatter writes exactly what Python string formatting writes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from epi_ml.twin.formats import (
    VALUE_FORMATS,
    epic_coefficient,
    epic_rows,
    epic_timestamp,
    format_value_python,
    quantize,
)


def _reference(ms: np.ndarray, values: np.ndarray, fmt: str) -> bytes:
    return b"".join(
        f"{epic_timestamp(datetime.fromtimestamp(m / 1000, UTC))},"
        f"{format_value_python(float(v), fmt)}\r\n".encode()
        for m, v in zip(ms.tolist(), values.tolist(), strict=True)
    )


@pytest.mark.parametrize("fmt", VALUE_FORMATS)
def test_rows_match_python_formatting(fmt: str) -> None:
    rng = np.random.default_rng(1)
    n = 3000
    # across midnight, and with the values each format meets in a run
    ms = 1_767_657_000_000 + np.cumsum(rng.choice([1020, 2000], n)).astype(np.int64)
    values = {
        "fixed1": rng.uniform(-50, 1300, n),
        "sig4": np.abs(rng.normal(0, 30, n)),
        "pressure": 10 ** rng.uniform(-11, -3, n),
    }[fmt]
    values[:20] = [0.0, -0.04, 0.99996, 9.99996, 99.996, 100.0, 1e-5, 1000.0, np.nan, 5.9,
                   0.9, 14.3, 1e-12, 9.996e-9, 1.0, -5.0, 0.05, 999.95, 1e-4, 12345.6]  # fmt: skip
    assert epic_rows(ms, values, fmt) == _reference(ms, values, fmt)
    uniform = np.full(50, 985.0 if fmt == "fixed1" else 2.5e-7 if fmt == "pressure" else 45.0)
    assert epic_rows(ms[:50], uniform, fmt) == _reference(ms[:50], uniform, fmt)


def test_the_formats_of_the_real_files() -> None:
    ms = np.array([1686528001727], dtype=np.int64)  # 12/06/2023 00:00:01.727 (the real day)
    assert epic_rows(ms, np.array([300.0]), "fixed1") == b"12/06/2023 00:00:01.727,300.0\r\n"
    assert epic_rows(ms, np.array([5.9]), "sig4") == b"12/06/2023 00:00:01.727,5.900\r\n"
    assert epic_rows(ms, np.array([0.9]), "sig4") == b"12/06/2023 00:00:01.727,0.9000\r\n"
    assert epic_rows(ms, np.array([2.78e-8]), "pressure") == b"12/06/2023 00:00:01.727,2.78E-08\r\n"
    assert epic_rows(ms, np.array([1000.0]), "pressure").endswith(b",1000.0\r\n")
    assert [epic_coefficient(v) for v in (4.614, -23130.0, 0.3758, 11.03)] == [
        "4.614E00", "-2.313E04", "3.758E-01", "1.103E01",
    ]  # fmt: skip


def test_quantize_prints_the_digits_epic_shows() -> None:
    assert quantize(np.array([2.7812345e-8]), "pressure").tolist() == [2.78e-08]
    assert quantize(np.array([5.90001, 45.67891]), "sig4").tolist() == [5.9, 45.68]
    assert quantize(np.array([985.34]), "fixed1").tolist() == [985.3]
