"""The MQTT listener against the Mosquitto broker of this machine (127.0.0.1:1883).

Each test publishes under a tool name of its own, so that tests (and anything else on the broker)
do not see each other's samples. A missing broker skips locally and fails in CI (conftest.require).
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from conftest import require

from epi_ml.ingest.batch import open_context
from epi_ml.ingest.files import IngestContext
from epi_ml.live.buffer import read_samples
from epi_ml.live.mqtt import MqttListener, PayloadError, parse_address, parse_message, parse_sample
from epi_ml.live.runs import RunEvent
from epi_ml.settings import reset_settings_cache
from epi_ml.store import read_session
from epi_ml.store.models import GrowthRun

BROKER = ("127.0.0.1", 1883)


def _broker_up() -> bool:
    try:
        with socket.create_connection(BROKER, timeout=1):
            return True
    except OSError:
        return False


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def ctx(store_url: str, monkeypatch: pytest.MonkeyPatch) -> IngestContext:
    monkeypatch.setenv("EPI_ML_DATABASE_URL", store_url)
    reset_settings_cache()
    return open_context()


@pytest.fixture
def events() -> list[RunEvent]:
    return []


@pytest.fixture
def listener(ctx: IngestContext, events: list[RunEvent]) -> Iterator[MqttListener]:
    require(
        _broker_up(),
        f"Mosquitto not reachable at {BROKER[0]}:{BROKER[1]}",
        "start it: mosquitto -d -c /etc/mosquitto/mosquitto.conf",
    )
    listener = MqttListener(ctx.engine, *BROKER, configs=ctx.configs, on_run=events.append)
    listener.start()
    assert listener.wait_subscribed(10), "the listener did not subscribe"
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def publish() -> Iterator[Callable[[str, str], None]]:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(*BROKER)
    client.loop_start()

    def send(topic: str, payload: str) -> None:
        client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    try:
        yield send
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def tool() -> str:
    return f"MQ{uuid.uuid4().hex[:8]}"


def test_plain_and_json_samples_with_tag_maps_and_bad_payloads_skipped(
    ctx: IngestContext, listener: MqttListener, publish: Callable[[str, str], None], tool: str
) -> None:
    before = datetime.now(UTC)
    publish(f"epi-ml/{tool}/Ga.PID.MV", "985.3")  # EPIC tag -> Ga.T, time of receipt
    publish(f"epi-ml/{tool}/sub.T", json.dumps({"time": "2026-02-02T10:00:01.727Z", "value": 600}))
    publish(f"epi-ml/{tool}/Ga.PID.MV", "not a number")
    publish(f"epi-ml/{tool}/BEP", json.dumps({"time": "2026-02-02T10:00:02", "value": "high"}))
    publish(f"epi-ml/{tool}/BEP", "nan")
    publish(f"epi-ml/{tool}/Mystery.PV", json.dumps({"value": 1.5}))
    publish(
        f"epi-ml/{tool}/FLUX IG.PG.MV",
        json.dumps({"time": "2026-02-02T11:00:00+01:00", "value": 2.5e-7}),
    )

    def stored() -> int:
        return read_samples(ctx.engine, tool_id=tool).height

    _wait_for(lambda: stored() == 4 and listener.stats.bad_payloads == 3, "4 samples, 3 bad ones")
    rows = {r["channel"]: r for r in read_samples(ctx.engine, tool_id=tool).to_dicts()}
    assert set(rows) == {"Ga.T", "sub.T", "raw:Mystery.PV", "BEP"}
    assert rows["Ga.T"]["value"] == 985.3 and before <= rows["Ga.T"]["time"] <= datetime.now(UTC)
    assert rows["sub.T"]["time"] == datetime(2026, 2, 2, 10, 0, 1, 727000, tzinfo=UTC)
    assert rows["BEP"]["time"] == datetime(2026, 2, 2, 10, tzinfo=UTC)
    assert all(r["run_id"] is None for r in rows.values())  # no run marks: no run


def test_the_messages_topic_starts_and_ends_runs(
    ctx: IngestContext,
    listener: MqttListener,
    publish: Callable[[str, str], None],
    tool: str,
    events: list[RunEvent],
) -> None:
    run_id = f"{tool}-20260202-07"
    publish(f"epi-ml/{tool}/GC IG.PG.MV", "3.1E-09")  # before the run
    publish(f"epi-ml/{tool}/messages", "W1 moved from MC_manip to GC")
    publish(
        f"epi-ml/{tool}/messages", f"Run {run_id} start recipe=gaas_buffer operator=ann wafer=W1"
    )
    _wait_for(lambda: any(e.run_id == run_id and e.kind == "started" for e in events), "the start")
    publish(f"epi-ml/{tool}/Ga.PID.MV", "985.0")
    publish(f"epi-ml/{tool}/Ga.PID.MV", "985.1")
    _wait_for(lambda: read_samples(ctx.engine, run_id=run_id).height == 2, "the run's samples")
    with read_session(ctx.engine) as session:
        run = session.get(GrowthRun, run_id)
        assert run is not None and run.status == "live" and run.ended_at is None
        assert (run.recipe_name, run.operator, run.wafer) == ("gaas_buffer", "ann", "W1")

    publish(f"epi-ml/{tool}/messages", f"Run {run_id} end")
    publish(f"epi-ml/{tool}/messages", json.dumps({"message": "W1 moved from GC to MC_manip"}))
    _wait_for(lambda: any(e.run_id == run_id and e.kind == "ended" for e in events), "the end")
    publish(f"epi-ml/{tool}/Ga.PID.MV", "700.0")  # after the run
    _wait_for(lambda: read_samples(ctx.engine, tool_id=tool).height == 4, "every sample")
    with read_session(ctx.engine) as session:
        run = session.get(GrowthRun, run_id)
        assert run is not None and run.status == "open" and run.ended_at > run.started_at
    labels = read_samples(ctx.engine, tool_id=tool).sort("id").get_column("run_id").to_list()
    assert labels == [None, run_id, run_id, None]


def test_the_listener_reconnects_after_losing_the_broker(
    ctx: IngestContext, listener: MqttListener, publish: Callable[[str, str], None], tool: str
) -> None:
    publish(f"epi-ml/{tool}/Ga.T", "1.0")
    _wait_for(lambda: read_samples(ctx.engine, tool_id=tool).height == 1, "the first sample")
    listener.client.socket().shutdown(socket.SHUT_RDWR)  # the network goes away under paho
    _wait_for(lambda: listener.stats.connects >= 2 and listener.wait_subscribed(0), "a reconnect")
    publish(f"epi-ml/{tool}/Ga.T", "2.0")
    _wait_for(lambda: read_samples(ctx.engine, tool_id=tool).height == 2, "the sample after")
    assert listener.stats.disconnects >= 1


def test_payload_and_address_parsing() -> None:
    now = datetime(2026, 2, 2, 12, tzinfo=UTC)
    assert parse_sample(b" 2.78E-08 ", now) == (now, 2.78e-08)
    berlin = parse_sample(b'{"time": "2026-02-02T10:00:00", "value": 1}', now, "Europe/Berlin")
    assert berlin == (datetime(2026, 2, 2, 9, tzinfo=UTC), 1.0)
    for bad in (b"", b"true", b'{"value": true}', b'{"time": 5, "value": 1}', b"inf", b"\xff"):
        with pytest.raises(PayloadError):
            parse_sample(bad, now)
    assert parse_message(b"Layer 3 end", now) == (now, "Layer 3 end")
    assert parse_address("broker.fab:8883") == ("broker.fab", 8883)
    assert parse_address("localhost") == ("localhost", 1883)
    with pytest.raises(ValueError):
        parse_address("host:port")
