"""Tools that publish their channels over MQTT: a second live source for the buffer.

    listener = MqttListener(engine, "127.0.0.1", 1883, configs=configs)
    listener.run(stop_event)            # or start() ... stop()

Topics, one per tool and channel: `epi-ml/<tool>/<tag or channel>` (`epi-ml/MBE1/Ga.PID.MV` or
`epi-ml/MBE1/Ga.T`), mapped with the tool's tag map like the log files (`raw:<tag>` when unknown).
A payload is a plain number (its time is when it was received) or JSON
`{"time": "2026-12-01T10:00:01.727Z", "value": 985.3}` (a time without a zone is in the tool's
zone). `epi-ml/<tool>/messages` carries message texts exactly as the Message field of Messages.txt
(`Run MBE1-20261201-01 start recipe=...`, `W1 moved from LL to GC`; or JSON `{"time", "message"}`);
they feed the same run tracking as the tailer (epi_ml.live.runs), so the samples get run ids.

Received samples are written in batches, at least every `flush_s` (0.2 s), messages before the
samples received with them. A payload that is no number is counted and skipped (the first per
topic is logged with topic and payload); a failed write is retried with the next batch; a lost
connection is re-established by paho (1-30 s back-off) and the subscription renewed.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import polars as pl
from sqlalchemy import Engine

from epi_ml.ingest.tools import TOOL_NAME, ToolConfig
from epi_ml.live.buffer import append_samples
from epi_ml.live.runs import LiveTools, RunEvent

log = logging.getLogger(__name__)

PREFIX = "epi-ml"
MESSAGES_TOPIC = "messages"
FLUSH_S = 0.2
KEEPALIVE_S = 30
PENDING_LIMIT = 1_000_000  # samples held while the store is down; the oldest go beyond that
SAMPLE_SCHEMA = {
    "tool_id": pl.String,
    "channel": pl.String,
    "time": pl.Datetime("us", "UTC"),
    "value": pl.Float64,
}
MESSAGE_SCHEMA = {"time": pl.Datetime("us", "UTC"), "caller": pl.String, "message": pl.String}


class PayloadError(ValueError):
    """A payload that is not a sample; the message says what it should be."""


@dataclass
class MqttStats:
    received: int = 0
    samples: int = 0  # written to the buffer
    messages: int = 0
    bad_payloads: int = 0
    connects: int = 0
    disconnects: int = 0
    store_errors: int = 0


def parse_sample(payload: bytes, received: datetime, tz: str = "UTC") -> tuple[datetime, float]:
    """(time UTC, value) of a sample payload: a plain number, or JSON {"time", "value"}."""
    text = _text(payload)
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return received, _finite(value)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise PayloadError(
            'not a number and not JSON {"time": ISO-8601, "value": number}'
        ) from None
    if not isinstance(data, dict) or "value" not in data:
        raise PayloadError('JSON without "value" (expected {"time": ISO-8601, "value": number})')
    value = data["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f'"value" is {value!r}, not a number')
    at = _time(data.get("time"), tz) if data.get("time") is not None else received
    return at, _finite(float(value))


def parse_message(payload: bytes, received: datetime, tz: str = "UTC") -> tuple[datetime, str]:
    """(time UTC, text) of a messages-topic payload: the text, or JSON {"time", "message"}."""
    text = _text(payload).strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            at = _time(data.get("time"), tz) if data.get("time") is not None else received
            return at, data["message"].strip()
    if not text:
        raise PayloadError("empty message")
    return received, text


class MqttListener:
    """Subscribes to `<prefix>/#` and writes what tools publish into the live buffer."""

    def __init__(
        self,
        engine: Engine,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        configs: dict[str, ToolConfig] | None = None,
        tools: LiveTools | None = None,
        prefix: str = PREFIX,
        flush_s: float = FLUSH_S,
        qos: int = 1,
        client_id: str | None = None,
        on_run: Callable[[RunEvent], None] | None = None,
    ) -> None:
        self.engine, self.host, self.port = engine, host, port
        self.tools = tools or LiveTools(engine, configs, on_run=on_run)
        self.prefix, self.flush_s, self.qos = prefix.rstrip("/"), flush_s, qos
        self.stats = MqttStats()
        self._samples: list[tuple[str, str, datetime, float]] = []
        self._messages: list[tuple[str, datetime, str]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._warned: set[str] = set()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"epi-ml-live-{uuid.uuid4().hex[:8]}",
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and start flushing."""
        self._stop.clear()
        self.client.connect_async(self.host, self.port, keepalive=KEEPALIVE_S)
        self.client.loop_start()
        self._flusher = threading.Thread(target=self._flush_loop, name="mqtt-flush", daemon=True)
        self._flusher.start()

    def wait_subscribed(self, timeout: float) -> bool:
        """True once connected and subscribed (for callers that must not publish too early)."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Disconnect and write what was received up to now."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.client.disconnect()
        self.client.loop_stop()
        self.flush()

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    # -- paho callbacks (its network thread) -----------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt %s:%d refused the connection: %s", self.host, self.port, reason)
            return
        self.stats.connects += 1
        log.info("mqtt: connected to %s:%d, subscribing to %s/#", self.host, self.port, self.prefix)
        client.subscribe(f"{self.prefix}/#", qos=self.qos)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, _reasons: Any, _properties: Any
    ) -> None:
        self._subscribed.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        self._subscribed.clear()
        self.stats.disconnects += 1
        if not self._stop.is_set():
            log.warning(
                "mqtt: lost the connection to %s:%d (%s); reconnecting",
                self.host,
                self.port,
                reason,
            )

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = datetime.now(UTC)
        self.stats.received += 1
        try:
            self._take(message.topic, message.payload, received)
        except PayloadError as exc:
            self.stats.bad_payloads += 1
            if message.topic not in self._warned:
                self._warned.add(message.topic)
                log.warning(
                    "mqtt: topic %s: payload %r skipped: %s (further bad payloads of this "
                    "topic are only counted)",
                    message.topic,
                    message.payload[:80],
                    exc,
                )
        except Exception:  # noqa: BLE001 - paho's thread must survive any one message
            self.stats.bad_payloads += 1
            log.exception("mqtt: topic %s: payload %r skipped", message.topic, message.payload[:80])

    def _take(self, topic: str, payload: bytes, received: datetime) -> None:
        parts = topic.split("/")
        prefix_levels = self.prefix.count("/") + 1
        if len(parts) < prefix_levels + 2 or not TOOL_NAME.match(parts[prefix_levels]):
            raise PayloadError(f"topic is not {self.prefix}/<tool>/<tag or channel>")
        tool_id, rest = parts[prefix_levels], "/".join(parts[prefix_levels + 1 :])
        tool = self.tools.get(tool_id)
        if rest == MESSAGES_TOPIC:
            at, text = parse_message(payload, received, tool.tz)
            with self._lock:
                self._messages.append((tool_id, at, text))
            return
        at, value = parse_sample(payload, received, tool.tz)
        channel = tool.channel(rest, where=f"mqtt topic {topic}")
        with self._lock:
            self._samples.append((tool_id, channel, at, value))

    # -- writing -------------------------------------------------------------------------------
    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_s):
            try:
                self.flush()
            except Exception:  # noqa: BLE001
                log.exception("mqtt: flush failed; trying again")

    def flush(self) -> int:
        """Write what was received since the last flush; returns the samples written."""
        with self._lock:
            samples, self._samples = self._samples, []
            messages, self._messages = self._messages, []
        if not samples and not messages:
            return 0
        try:
            return self._write(samples, messages)
        except Exception as exc:  # noqa: BLE001 - the store may be down for a moment
            self.stats.store_errors += 1
            log.warning(
                "mqtt: writing the live buffer failed (%s: %s); retried with the next batch",
                type(exc).__name__,
                exc,
            )
            with self._lock:
                self._samples = (samples + self._samples)[-PENDING_LIMIT:]
                self._messages = messages + self._messages
            return 0

    def _write(
        self,
        samples: list[tuple[str, str, datetime, float]],
        messages: list[tuple[str, datetime, str]],
    ) -> int:
        if messages:
            frame = pl.DataFrame(
                [(tool, at, "mqtt", text) for tool, at, text in messages],
                schema={"tool_id": pl.String, **MESSAGE_SCHEMA},
                orient="row",
            )
            for (tool_id,), group in frame.group_by("tool_id", maintain_order=True):
                self.tools.get(str(tool_id)).add_messages(group.drop("tool_id"))
            self.stats.messages += len(messages)
        self.tools.settle({tool for tool, _, _ in messages} or None)
        if not samples:
            return 0
        frame = pl.DataFrame(samples, schema=SAMPLE_SCHEMA, orient="row")
        labelled = [
            group.with_columns(
                run_id=self.tools.get(str(tool_id)).run_ids(group.get_column("time"))
            )
            for (tool_id,), group in frame.group_by("tool_id", maintain_order=True)
        ]
        written = append_samples(self.engine, pl.concat(labelled))
        self.stats.samples += written
        return written


def parse_address(address: str, default_port: int = 1883) -> tuple[str, int]:
    """`HOST:PORT` (or `HOST`) -> (host, port)."""
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    if not host:
        raise ValueError(f"{address!r} is not HOST:PORT")
    try:
        return host, int(port) if port else default_port
    except ValueError:
        raise ValueError(f"{address!r}: the port {port!r} is not a number") from None


# ---------------------------------------------------------------------------------------------
def _text(payload: bytes) -> str:
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8 text") from None


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise PayloadError(f"value {value} is not finite")
    return value


def _time(text: Any, tz: str) -> datetime:
    if not isinstance(text, str):
        raise PayloadError(f'"time" is {text!r}, not an ISO-8601 text')
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PayloadError(f'"time" {text!r} is not ISO-8601 (2026-12-01T10:00:01.727Z)') from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=ZoneInfo(tz))
    return at.astimezone(UTC)


__all__ = [
    "MqttListener",
    "MqttStats",
    "PayloadError",
    "parse_address",
    "parse_message",
    "parse_sample",
]
