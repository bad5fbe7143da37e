"""A summary of what the store holds: the landing view of the dashboard and of `epi-ml status`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, func, select

from epi_ml.store import read_session
from epi_ml.store.models import GrowthRun, IngestEvent, ModelVersion, Tool


@dataclass
class StoreOverview:
    tools: list[str]
    runs_by_status: dict[str, int]
    latest_runs: list[dict[str, object]] = field(default_factory=list)
    ingest_by_status: dict[str, int] = field(default_factory=dict)
    model_versions: int = 0
    last_ingest_at: datetime | None = None
    # the newest runs' errors and warnings: run, severity, code, channel, message, start
    latest_findings: list[dict[str, object]] = field(default_factory=list)

    @property
    def n_runs(self) -> int:
        return sum(self.runs_by_status.values())


FINDING_SEVERITIES = ("error", "warning")


def store_overview(engine: Engine, latest: int = 10, findings: int = 12) -> StoreOverview:
    with read_session(engine) as s:
        runs_by_status = dict(
            s.execute(select(GrowthRun.status, func.count()).group_by(GrowthRun.status)).tuples().all()
        )
        ingest_by_status = dict(
            s.execute(select(IngestEvent.status, func.count()).group_by(IngestEvent.status))
            .tuples()
            .all()
        )
        latest_runs = [
            {
                "run": r.id,
                "tool": r.tool_id,
                "recipe": r.recipe_name or "",
                "started": r.started_at.strftime("%Y-%m-%d %H:%M") if r.started_at else "",
                "status": r.status,
                "errors": r.n_errors,
                "warnings": r.n_warnings,
            }
            for r in s.scalars(
                select(GrowthRun).order_by(GrowthRun.started_at.desc().nulls_last()).limit(latest)
            )
        ]
        latest_findings = [
            {
                "run": r.id,
                "tool": r.tool_id,
                "severity": f.get("severity", ""),
                "code": f.get("code", ""),
                "channel": f.get("channel") or "",
                "message": f.get("message", ""),
                "start": f.get("start") or "",
            }
            for r in s.scalars(
                select(GrowthRun)
                .where((GrowthRun.n_errors + GrowthRun.n_warnings) > 0)
                .order_by(GrowthRun.started_at.desc().nulls_last())
                .limit(findings)
            )
            for f in r.findings or []
            if f.get("severity") in FINDING_SEVERITIES
        ][:findings]
        return StoreOverview(
            tools=list(s.scalars(select(Tool.id).order_by(Tool.id))),
            runs_by_status=runs_by_status,
            latest_runs=latest_runs,
            ingest_by_status=ingest_by_status,
            model_versions=s.scalar(select(func.count()).select_from(ModelVersion)) or 0,
            last_ingest_at=s.scalar(select(func.max(IngestEvent.received_at))),
            latest_findings=latest_findings,
        )
