"""Every page of the dashboard in headless Chromium, over the session's served home (conftest.py):
it loads without console errors, shows what it should, and its screenshot is saved."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from browser_support import LIVE_TOOL, Page, Served

pytestmark = pytest.mark.browser

# path, what must be visible once the page is drawn, the screenshot's name
PAGES = [
    ("/", "text=Latest runs", "overview"),
    ("/runs", "#runs-grid .ag-row", "runs"),
    ("/calibration", "#calibration-content .js-plotly-plot", "calibration"),
    ("/models", "#models-registry-table", "models"),
]


def _trace_lengths(page: Page, graph_id: str) -> list[int]:
    script = (
        "id => { const g = document.querySelector('#' + id + ' .js-plotly-plot');"
        " return g && g.data ? g.data.map(t => (t.x || []).length) : []; }"
    )
    return list(page.tab.evaluate(script, graph_id))


def _newest_x(page: Page, graph_id: str) -> float:
    script = (
        "id => { const g = document.querySelector('#' + id + ' .js-plotly-plot');"
        " if (!g || !g.data) return 0; let m = 0;"
        " for (const t of g.data) { const x = t.x || []; if (x.length) m = Math.max(m, +new Date(x[x.length - 1])); }"
        " return m; }"
    )
    return float(page.tab.evaluate(script, graph_id))


def _x_range(page: Page, graph_id: str) -> tuple[float, float]:
    """The time axis shown, in ms since the epoch (Plotly keeps a date axis's range as UTC text)."""
    script = (
        "id => document.querySelector('#' + id + ' .js-plotly-plot')._fullLayout.xaxis.range"
        ".map(r => typeof r === 'number' ? r : +new Date(String(r).replace(' ', 'T') + 'Z'))"
    )
    start, end = page.tab.evaluate(script, graph_id)
    return float(start), float(end)


def test_the_live_page_shows_the_run_growing_and_it_advances(page: Page, served: Served) -> None:
    page.open(f"/live?tool={LIVE_TOOL}", "#live-run-link")
    assert page.tab.inner_text("#live-run-link") == served.live_run_id
    page.tab.wait_for_function(
        "() => { const g = document.querySelector('#live-rheed .js-plotly-plot');"
        " return g && g.data && g.data.length && g.data[0].x.length > 10; }",
        timeout=30_000,
    )
    first_x, first_points = _newest_x(page, "live-rheed"), sum(_trace_lengths(page, "live-cells"))
    page.tab.wait_for_timeout(4000)  # eight ticks of the page; the twin grows 60 s of run in that time
    later_x, later_points = _newest_x(page, "live-rheed"), sum(_trace_lengths(page, "live-cells"))
    assert later_x > first_x, "the RHEED trace did not advance"
    assert later_points > first_points, "no new cell-temperature points were drawn"
    # every channel is drawn, grouped, with units in the names
    names = page.tab.evaluate(
        "() => document.querySelector('#live-cells .js-plotly-plot').data.map(t => t.name)"
    )
    assert "Ga.T [°C]" in names
    # shutters log on change only: the timeline appears with the first change (the flux check
    # opens each cell's shutter ~15 run-minutes in, about a minute at the twin's speed)
    page.tab.wait_for_function(
        "() => document.querySelector('#live-shutters .js-plotly-plot').data"
        ".some(t => t.name === 'Ga.shutter')",
        timeout=120_000,
    )
    shutter_end = _newest_x(page, "live-shutters")
    page.tab.wait_for_timeout(2000)
    assert _newest_x(page, "live-shutters") > shutter_end, "the shutter timeline is not drawn on to now"
    # every figure shows the same trailing window of the run (the twin: 20 s of run per second)
    (shutters_from, shutters_to), (cells_from, cells_to) = _x_range(page, "live-shutters"), _x_range(page, "live-cells")
    assert abs(shutters_to - cells_to) < 15_000, (shutters_to, cells_to)
    assert abs((shutters_to - shutters_from) - (cells_to - cells_from)) < 0.1 * (cells_to - cells_from)
    page.screenshot("live")
    page.assert_no_errors()


# Before the page's scripts: keep every live-page update as the browser receives it.
RECORD_UPDATES = """
window.__updates = [];
const fetch0 = window.fetch;
window.fetch = async (...args) => {
  const response = await fetch0(...args);
  if (String(args[0]).includes('_dash-update-component')) {
    response.clone().text().then(t => { if (t.includes('live-state')) window.__updates.push(t); });
  }
  return response;
};
"""


def test_live_updates_send_only_new_points(page: Page, served: Served) -> None:
    """After the first draw the page's updates are extendData of the new samples, not figures."""
    page.context.add_init_script(RECORD_UPDATES)
    page.open(f"/live?tool={LIVE_TOOL}", "#live-run-link")
    page.tab.wait_for_function("() => window.__updates.length >= 8", timeout=30_000)
    ticks = [json.loads(t)["response"] for t in page.tab.evaluate("() => window.__updates")]
    assert any("figure" in tick.get("live-rheed", {}) for tick in ticks[:2])  # the first draw
    later = ticks[2:]
    assert all("figure" not in tick.get("live-rheed", {}) for tick in later)
    assert any("extendData" in tick.get("live-rheed", {}) for tick in later)
    assert max(len(json.dumps(tick)) for tick in later) < 100_000
    page.assert_no_errors()


def test_an_unknown_tool_falls_back_to_one_with_a_run(page: Page, served: Served) -> None:
    page.open("/live?tool=NO-SUCH-TOOL", "#live-run-link")
    assert page.tab.input_value("#live-tool") == LIVE_TOOL
    assert page.tab.inner_text("#live-run-link") == served.live_run_id
    page.assert_no_errors()


@pytest.mark.parametrize(("path", "ready", "name"), PAGES, ids=[p[2] for p in PAGES])
def test_every_page_loads_without_console_errors(page: Page, path: str, ready: str, name: str) -> None:
    page.open(path, ready)
    page.tab.wait_for_timeout(1500)  # let the page's callbacks finish drawing
    assert not page.tab.query_selector(".store-not-ready")
    page.screenshot(name)
    page.assert_no_errors()


def test_a_run_opens_from_the_table_with_layers_predictions_and_raw_files(page: Page, served: Served) -> None:
    page.open("/runs?status=validated", "#runs-grid .ag-row")  # runs built and measured
    clicks = 0
    link = page.tab.locator("#runs-grid a[href^='/runs/']").first
    run_id = link.inner_text()
    link.click()
    clicks += 1
    page.tab.wait_for_url(re.compile(r".*/runs/.+"))
    page.tab.wait_for_selector("#run-layers", timeout=30_000)
    assert run_id in page.tab.inner_text("h3")
    layers = page.tab.inner_text("#run-layers").lower()
    assert "target" in layers and "xrd" in layers and "predicted" in layers and "90 % interval" in layers
    assert "no prediction" not in layers
    assert page.tab.locator("#run-layers-table tr[id^='layer-']").count() > 0
    files = page.tab.locator("#run-raw-files-table a.raw-file-link")
    assert files.count() > 0
    href = files.first.get_attribute("href")
    with urllib.request.urlopen(served.url + href, timeout=10) as response:  # the click's download
        assert response.status == 200 and len(response.read()) > 0
    clicks += 1
    assert clicks <= 3
    page.screenshot("run")
    page.assert_no_errors()


def test_a_run_opens_from_a_finding(page: Page) -> None:
    page.open("/", "#overview-findings")
    link = page.tab.locator("#overview-findings a[href^='/runs/']").first
    run_id = link.get_attribute("href").split("/runs/")[1].split("#")[0]
    link.click()
    page.tab.wait_for_url(re.compile(rf".*/runs/{re.escape(run_id)}.*"))
    page.tab.wait_for_selector("#run-findings", timeout=30_000)
    assert page.tab.locator("#run-findings").inner_text().strip()
    page.assert_no_errors()


def test_models_page_refuses_writes_without_credentials_and_links_lineage_to_runs(page: Page) -> None:
    page.open("/models", "#models-registry-table")
    assert page.tab.locator("#models-promote").is_disabled()
    assert "EPI_ML_DASH_USER" in page.tab.inner_text("#models-write-hint")
    link = page.tab.locator("#models-lineage-runs a.lineage-run-link").first
    run_id = link.inner_text()
    link.click()
    page.tab.wait_for_selector("#run-layers", timeout=30_000)
    assert run_id in page.tab.inner_text("h3")
    page.assert_no_errors()
