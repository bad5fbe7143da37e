"""The digital twin's campaign as a Dagster asset: the demo's default data, written to landing/."""


import time
from datetime import date

import dagster as dg

from assets.resources import EpiMlResource


class TwinCampaignConfig(dg.Config):
    runs: int = 24
    tools: int = 2
    seed: int = 7
    start: str = "2026-01-05"
    format: str = "epic"


@dg.asset(
    group_name="twin",
    kinds={"python", "file"},
    description=(
        "A campaign of the MBE digital twin (runs, calibration scans, measurements, injected "
        "faults with ground truth) written to landing/twin the way real tools write their logs."
    ),
)
def twin_campaign(
    context: dg.AssetExecutionContext, config: TwinCampaignConfig, epi_ml: EpiMlResource
) -> dg.MaterializeResult:
    from epi_ml.twin.campaign import simulate_campaign

    settings = epi_ml.settings()
    out = settings.landing_dir / "twin"
    started = time.perf_counter()
    manifest = simulate_campaign(
        out,
        runs=config.runs,
        seed=config.seed,
        tools=config.tools,
        start=date.fromisoformat(config.start),
        fmt=config.format,
        overwrite=True,  # re-materializing replaces the previous campaign in landing/twin
    )
    elapsed = time.perf_counter() - started
    truth = manifest["truth"]
    context.log.info(f"twin campaign: {config.runs} runs on {config.tools} tools in {elapsed:.1f} s")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "manifest": dg.MetadataValue.path(str(out / "manifest.json")),
            "tools": ", ".join(manifest["tools"]),
            "runs": config.runs,
            "days": f"{manifest['start']} .. {manifest['end']}",
            "files": {kind: len(files) for kind, files in manifest["files"].items()},
            "injected_faults": len(truth["faults"]),
            "calibration_scans": len(truth["calibrations"]),
            "seconds": round(elapsed, 2),
        }
    )
