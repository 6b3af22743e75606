from __future__ import annotations

from pyk8s.client.client import Client
from pyk8s.client.events import EVENTS, WARNING, EventRecorder
from tests.client.conftest import CONFIGMAPS, cm


async def test_events_are_recorded_and_repeats_folded(client: Client) -> None:
    obj = await client.create(CONFIGMAPS, cm("subject"), "default")
    recorder = EventRecorder(client, "tester", "node-a")
    recorder.record(obj, WARNING, "Broken", "it broke")
    recorder.record(obj, WARNING, "Broken", "it broke")
    recorder.record(obj, WARNING, "Broken", "it broke again")
    await recorder.flush()
    events = (await client.list(EVENTS, "default"))["items"]
    by_message = {e["message"]: e for e in events}
    assert set(by_message) == {"it broke", "it broke again"}
    folded = by_message["it broke"]
    assert folded["count"] == 2
    assert folded["involvedObject"]["uid"] == obj["metadata"]["uid"]
    assert folded["involvedObject"]["kind"] == "ConfigMap"
    assert folded["source"] == {"component": "tester", "host": "node-a"}
    assert folded["type"] == WARNING and folded["reason"] == "Broken"
    await recorder.close()
