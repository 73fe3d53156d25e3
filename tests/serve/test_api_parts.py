"""The HTTP side's parts without a server: the event hub, the login limiter, the secrets, and the
helpers that shape answers (URL redaction, CSV, times, aggregate-only hiding)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from fastapi import HTTPException

from lrfer.serve.api_cameras import redact_url
from lrfer.serve.api_common import parse_time, pick_bucket
from lrfer.serve.api_data import csv_lines, hide_small_buckets
from lrfer.serve.auth import LoginLimiter, csrf_for, hash_password, new_session, new_token, sha256_hex, verify_password
from lrfer.serve.events import EventHub, sse_message


def test_hub_fans_out_from_threads_and_drops_for_a_slow_client():
    async def main():
        hub = EventHub(maxsize=8)
        fast, slow = hub.subscribe(), hub.subscribe()
        threads = [threading.Thread(target=lambda k=k: [hub.publish("status", {"k": k, "i": i}) for i in range(4)]) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = [await fast.get(timeout=5) for _ in range(8)]
        assert sorted((d["k"], d["i"]) for _, d in got) == [(k, i) for k in range(2) for i in range(4)]
        # the slow client's queue is full now: its events are dropped, the publisher never waits, the fast one gets all
        for i in range(5):
            await asyncio.to_thread(hub.publish, "alert", {"i": i})
            assert (await fast.get(timeout=5))[1] == {"i": i}
        assert slow.dropped == 5 and fast.dropped == 0
        assert await fast.get(timeout=0.05) is None  # nothing more: a timeout, not an error
        hub.close()
        with pytest.raises(StopAsyncIteration):
            await slow.get(timeout=1)  # closing is never dropped, even for a full queue
        assert [e async for e in fast] == [] and hub.subscribers == 0
        late = hub.subscribe()
        with pytest.raises(StopAsyncIteration):
            await late.get(timeout=1)

    asyncio.run(main())


def test_hub_forgets_a_client_whose_loop_is_gone():
    hub = EventHub()
    sub = asyncio.run(_subscribe(hub))  # that loop is closed now
    assert hub.subscribers == 1
    hub.publish("alert", {"x": 1})  # must not raise
    assert hub.subscribers == 0 and sub.closed is False


async def _subscribe(hub):
    return hub.subscribe()


def test_sse_message_format():
    assert sse_message("alert", {"a": 1}, 7) == 'id: 7\nevent: alert\ndata: {"a":1}\n\n'


def test_login_limiter_by_ip_and_by_name():
    now = [1000.0]
    lim = LoginLimiter(max_failures=3, window=60, max_keys=50, clock=lambda: now[0])
    for _ in range(3):
        assert lim.retry_after("10.0.0.1", "bob") == 0
        lim.failed("10.0.0.1", "bob")
    assert 59 <= lim.retry_after("10.0.0.1", "bob") <= 61
    assert lim.retry_after("10.0.0.2", "BOB ") > 0  # the name, from anywhere (names compare case-blind)
    assert lim.retry_after("10.0.0.1", "alice") > 0  # the address, for any name
    assert lim.retry_after("10.0.0.3", "alice") == 0
    now[0] += 61
    assert lim.retry_after("10.0.0.1", "bob") == 0  # the window passed
    lim.failed("10.0.0.1", "bob")
    lim.succeeded("10.0.0.1", "bob")
    for i in range(200):  # a spray of addresses and names stays bounded
        lim.failed(f"10.1.{i}.1", f"user{i}")
    assert len(lim._fails) <= 50


def test_secrets_are_kept_as_hashes():
    h = hash_password("correct horse")
    assert h.startswith("$argon2id$") and "correct horse" not in h
    assert verify_password(h, "correct horse") and not verify_password(h, "wrong") and not verify_password(None, "correct horse")
    assert not verify_password("not-a-hash", "x")
    token, token_hash = new_token()
    assert token.startswith("lrf_") and len(token) > 40 and token_hash == sha256_hex(token) != token
    sid, sid_hash = new_session()
    assert sid_hash == sha256_hex(sid) and csrf_for(sid) == csrf_for(sid) != csrf_for(new_session()[0])


def test_redact_url():
    assert redact_url("rtsp://admin:s3cret@10.0.0.5:554/stream1") == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert redact_url("rtsp://10.0.0.5/stream1") == "rtsp://10.0.0.5/stream1"
    assert redact_url("/videos/lounge.mp4") == "/videos/lounge.mp4"


def test_csv_lines_flatten_and_stream():
    rows = [{"camera_id": "a", "start": 0.0, "p_happy": 0.5}, {"camera_id": "a", "start": 5.0, "p_sad": 0.7, "p_happy": 0.1}]
    rows += [{"camera_id": "a", "start": 10.0 + i} for i in range(1200)]
    chunks = list(csv_lines(iter(rows)))
    assert len(chunks) > 2  # streamed in pieces, not one string
    lines = "".join(chunks).splitlines()
    assert lines[0] == "camera_id,start,p_happy,start_iso,p_sad" and len(lines) == 1 + 1202
    assert lines[2].startswith("a,5.0,0.1,1970-01-01T00:00:05Z,0.7")
    assert list(csv_lines(iter([]))) == ["camera_id,track_key,start\n"]


def test_parse_time_and_buckets():
    assert parse_time("1700000000", "start", 0) == 1_700_000_000
    assert parse_time("2023-11-14T22:13:20Z", "start", 0) == 1_700_000_000
    assert parse_time("2023-11-14T22:13:20", "start", 0) == 1_700_000_000  # naive: UTC
    assert parse_time(None, "start", 42.0) == 42.0
    for bad in ("yesterday", "nan", "inf"):
        with pytest.raises(HTTPException) as err:
            parse_time(bad, "start", 0)
        assert err.value.status_code == 422 and err.value.detail.startswith("start:")
    assert pick_bucket(None, 3600, 5) == 15 and pick_bucket(None, 86400, 5) == 300 and pick_bucket(None, 7 * 86400, 5) == 3600
    assert pick_bucket(30, 3600, 5) == 30


def test_hide_small_buckets():
    data = {
        "classes": ["happy", "sad"],
        "points": [{"t": 0, "tracks": 2, "shares": {"happy": 0.5, "sad": 0.5}}, {"t": 5, "tracks": 5, "shares": {"happy": 1.0, "sad": 0.0}}],
    }
    out = hide_small_buckets(data, 3)
    assert out["points"][0]["shares"] == {"happy": None, "sad": None} and out["points"][0]["hidden"]
    assert out["points"][1]["shares"]["happy"] == 1.0 and "hidden" not in out["points"][1]


def test_ingest_schema_follows_the_records():
    """A field added to Observation or CameraStatus must be accepted by /api/ingest too (a remote
    worker sends every field; the schema forbids unknown ones)."""
    import dataclasses

    from lrfer.serve.api_ingest import ObservationIn, StatusIn
    from lrfer.serve.records import CameraStatus, Observation

    assert set(ObservationIn.model_fields) == {f.name for f in dataclasses.fields(Observation)}
    assert set(StatusIn.model_fields) == {f.name for f in dataclasses.fields(CameraStatus)}
