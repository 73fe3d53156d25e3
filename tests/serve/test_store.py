"""The Store on SQLite and on a real PostgreSQL server: what goes in comes out, once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

import lrfer.serve.store
from lrfer.serve.config import Camera, Retention, Rule
from lrfer.serve.records import AlertEvent, Observation
from lrfer.serve.store import Store, connect

T0 = 1_700_000_400.0  # not a multiple of 60 or 3600: the data straddles rollup windows


def _obs(track: str, i: int, probs=None, zone: str = "", certain: int = 8, camera: str = "lounge") -> Observation:
    probs = probs if probs is not None else {"happy": 0.6, "neutral": 0.3, "sad": 0.1}
    return Observation(camera, track, zone, T0 + 5 * i, 5.0, 10, certain, probs if certain else None, 24.0, 0.9)


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    yield s
    s.close()


def test_cameras_round_trip(store):
    store.put_camera(Camera(id="lounge", name="Lounge", url="rtsp://cam/1", zones=[{"name": "sofa", "polygon": [(0, 0), (0.5, 0), (0.5, 1)]}]))
    store.put_camera(Camera(id="lounge", name="Lounge 2", url="rtsp://cam/1"))  # an edit, not a second row
    cams = store.list_cameras()
    assert [c["id"] for c in cams] == ["lounge"] and cams[0]["name"] == "Lounge 2"
    assert store.delete_camera("lounge") and store.get_camera("lounge") is None and not store.delete_camera("lounge")


def test_ingest_is_idempotent_by_batch(store):
    batch = [_obs("r-1", i) for i in range(12)]
    assert store.ingest(batch, "b-1") is True
    assert store.ingest(batch, "b-1") is False  # a worker's retry
    rows = list(store.export_observations("lounge", T0, T0 + 3600))
    assert len(rows) == 12 and rows[0]["p_happy"] == pytest.approx(0.6)


def test_rollups_agree_with_observations(store):
    """A timeline read from minute rollups equals the same range summed from per-track rows."""
    sad = {"happy": 0.1, "neutral": 0.2, "sad": 0.7}
    store.ingest([_obs("r-1", i) for i in range(40)] + [_obs("r-2", i, sad, zone="sofa") for i in range(10, 50)] + [_obs("r-3", i, certain=0) for i in range(5)])
    fine = store.timeline("lounge", T0 - 3600, T0 + 3600, 5)
    coarse = store.timeline("lounge", T0 - 3600, T0 + 3600, 60)
    hourly = store.timeline("lounge", T0 - 7200, T0 + 7200, 3600)
    assert sum(p["frames"] for p in fine["points"]) == sum(p["frames"] for p in coarse["points"]) == sum(p["frames"] for p in hourly["points"]) == 850
    # the minute windows' shares, recomputed from the 5 s points
    for p in coarse["points"]:
        inside = [q for q in fine["points"] if p["t"] <= q["t"] < p["t"] + 60]
        certain = sum(q["certain"] for q in inside)
        sad_share = sum((q["shares"]["sad"] or 0) * q["certain"] for q in inside) / certain
        assert p["shares"]["sad"] == pytest.approx(sad_share, abs=1e-3)
    assert max(p["tracks"] for p in coarse["points"]) == 3  # r-3 (uncertain only) counts as a person, not as evidence
    assert store.timeline("lounge", T0, T0 + 3600, 60, zone="sofa")["points"][0]["shares"]["sad"] == pytest.approx(0.7)


def test_uncertain_buckets_have_no_shares(store):
    store.ingest([_obs("r-9", i, certain=0) for i in range(3)])
    pts = store.timeline("lounge", T0, T0 + 60, 5)["points"]
    assert pts and all(p["certain"] == 0 and all(v is None for v in p["shares"].values()) for p in pts)


def test_tracks_time_in_each_expression(store):
    store.ingest([_obs("r-1", i) for i in range(6)] + [_obs("r-1", i, {"happy": 0.1, "sad": 0.9}) for i in range(6, 8)])
    (t,) = store.tracks("lounge", T0 - 10, T0 + 3600)
    assert t["track_key"] == "r-1" and t["frames"] == 80 and t["seconds"] == {"happy": 30.0, "sad": 10.0}
    assert t["first_seen"] == T0 and t["last_seen"] == T0 + 40


def test_delete_range_rebuilds_rollups(store):
    store.ingest([_obs("r-1", i) for i in range(24)])  # two minutes
    n = store.delete_observations("lounge", T0, T0 + 30)
    assert n == 6
    total = sum(p["frames"] for p in store.timeline("lounge", T0 - 3600, T0 + 3600, 60)["points"])
    assert total == 180 == sum(p["frames"] for p in store.timeline("lounge", T0 - 3600, T0 + 3600, 5)["points"])
    store.delete_observations(None, T0 - 3600, T0 + 3600)
    assert store.tracks("lounge", T0 - 3600, T0 + 3600) == []
    assert store.timeline(None, T0 - 7200, T0 + 7200, 3600)["points"] == []


def test_purge_keeps_the_retention_window(store):
    store.ingest([_obs("old", 0), _obs("new", 0)])
    store.ingest([Observation("lounge", "new", "", T0 + 40 * 86400, 5.0, 10, 8, {"happy": 1.0}, 20.0, 0.9)])
    out = store.purge(T0 + 40 * 86400 + 10, Retention(days=30))
    assert out["observations"] == 2
    assert [r["track_key"] for r in store.export_observations(None, 0, 2e10)] == ["new"]


def test_alert_lifecycle(store):
    a = store.add_alert(AlertEvent("lounge", "", "r-1", "distress", T0, "a person looks distressed", {"share": 0.7}))
    assert a["state"] == "open" and a["evidence"] == {"share": 0.7}
    assert store.acknowledge_alert(a["id"], "nurse", "checked on her")["state"] == "acknowledged"
    assert store.acknowledge_alert(a["id"], "other")["acknowledged_by"] == "nurse"  # the first one stays
    r = store.resolve_alert(a["id"], "nurse")
    assert r["state"] == "resolved" and r["note"] == "checked on her"
    assert store.list_alerts(state="open") == [] and len(store.list_alerts()) == 1
    assert store.get_alert(999) is None and store.acknowledge_alert(999, "x") is None


def test_users_tokens_sessions_keep_hashes_only(store):
    u = store.add_user("amy", "$argon2id$fake", "admin")
    assert "password_hash" not in u and store.get_user("amy", with_hash=True)["password_hash"] == "$argon2id$fake"
    h = hashlib.sha256(b"token").hexdigest()
    tok = store.add_token("site-b", h, "worker", "amy")
    assert "token_hash" not in tok and store.find_token(h)["name"] == "site-b"
    assert (tok["site"], tok["cameras"]) == (None, None)  # unscoped
    h2 = hashlib.sha256(b"token2").hexdigest()
    scoped = store.add_token("door", h2, "worker", "amy", site="b", cameras=["door", "yard", "door"])
    assert store.find_token(h2)["site"] == "b" and store.find_token(h2)["cameras"] == ["door", "yard"] == scoped["cameras"]
    with pytest.raises(ValueError, match="only worker tokens"):
        store.add_token("ha", hashlib.sha256(b"t3").hexdigest(), "integration", "amy", site="b")
    assert store.revoke_token(tok["id"]) and store.find_token(h) is None
    store.add_session("s1", "amy", expires_at=T0 + 100)
    assert store.find_session("s1", now=T0)["username"] == "amy"
    assert store.find_session("s1", now=T0 + 101) is None
    store.update_user("amy", password_hash="$argon2id$new")  # a new password ends the sessions
    assert store.find_session("s1", now=T0) is None
    with pytest.raises(ValueError):
        store.add_user("bob", "h", "root")
    store.audit("amy", "camera.create", "lounge", {"url": "rtsp://x"}, "127.0.0.1")
    assert store.list_audit()[0]["detail"] == {"url": "rtsp://x"}


def test_reopening_runs_no_migration_twice(db_url):
    Store(db_url).close()
    s = Store(db_url)  # alembic sees head and does nothing
    assert s.ping()
    s.close()


def test_reminders_are_due_by_the_last_sending_and_counted_once(store):
    t = 1_700_000_000.0
    a = store.add_alert(AlertEvent("lounge", "", "k-1", "distress", t, "m", {}))
    b = store.add_alert(AlertEvent("lounge", "", "k-2", "distress", t + 300, "m", {}))
    due = (lambda now: [x["id"] for x in store.due_reminders(now, minutes=10, times=2)])
    assert due(t + 599) == [] and due(t + 600) == [a["id"]]
    first = store.due_reminders(t + 600, 10, 2)[0]
    assert store.mark_reminded(first, t + 600)["reminders"] == 1
    assert store.mark_reminded(first, t + 601) is None  # read before the first mark: not counted twice
    assert due(t + 900) == [b["id"]]  # a: reminded at +600, due again at +1200
    store.acknowledge_alert(b["id"], "amy")
    assert due(t + 1200) == [a["id"]]  # b is acknowledged: never again
    store.mark_reminded(store.due_reminders(t + 1200, 10, 2)[0], t + 1200)
    assert due(t + 10_000) == []  # twice is the most


def test_rules_round_trip(store):
    store.put_rule(Rule(name="calm-lounge", threshold=0.6, cameras=["lounge"]))
    store.put_rule(Rule(name="calm-lounge", threshold=0.65))  # an edit
    assert [(r.name, r.threshold) for r in store.list_rules()] == [("calm-lounge", 0.65)]
    assert store.delete_rule("calm-lounge") and store.list_rules() == [] and not store.delete_rule("calm-lounge")


def test_upgrade_from_the_first_schema_keeps_the_data(db_url):
    """A database made by the first release (revision 0001) is migrated in place when opened."""
    engine = connect(db_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(lrfer.serve.store.__file__).with_name("migrations")))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(sa.text("INSERT INTO cameras (id, site, config, created_at, updated_at) VALUES ('old', 'main', :c, 1, 1)"),
                     {"c": Camera(id="old", url="rtsp://x").model_dump_json()})
        assert "rules" not in sa.inspect(conn).get_table_names()
    engine.dispose()
    s = Store(db_url)
    assert s.get_camera("old")["url"] == "rtsp://x" and s.list_rules() == []
    s.close()


def _alembic(engine, action, revision: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(lrfer.serve.store.__file__).with_name("migrations")))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        action(cfg, revision)


def test_token_scope_migration_keeps_old_tokens_unscoped(db_url):
    """Revision 0003 adds the worker tokens' scope; a token made before it keeps working, unscoped;
    it downgrades and upgrades again without losing the tokens."""
    engine = connect(db_url)
    _alembic(engine, command.upgrade, "0002")
    h = hashlib.sha256(b"old-token").hexdigest()
    with engine.begin() as conn:
        assert "site" not in {c["name"] for c in sa.inspect(conn).get_columns("tokens")}
        conn.execute(sa.text("INSERT INTO tokens (name, token_hash, role, created_by, created_at) VALUES ('site-b', :h, 'worker', 'amy', 1)"), {"h": h})
    engine.dispose()
    s = Store(db_url)  # opened: migrated to head
    found = s.find_token(h)
    assert found["name"] == "site-b" and found["site"] is None and found["cameras"] is None
    s.add_token("door", hashlib.sha256(b"new").hexdigest(), "worker", "amy", site="b", cameras=["door"])
    s.close()
    engine = connect(db_url)
    _alembic(engine, command.downgrade, "0002")
    with engine.connect() as conn:
        assert "cameras" not in {c["name"] for c in sa.inspect(conn).get_columns("tokens")}
        assert conn.execute(sa.text("SELECT count(*) FROM tokens")).scalar() == 2
    engine.dispose()
    s = Store(db_url)
    assert s.find_token(h)["cameras"] is None and [t["site"] for t in s.list_tokens()] == [None, None]  # the scope went with the downgrade
    s.close()


def test_verdict_and_reminders_migration_keeps_old_alerts(db_url):
    """Revision 0004: an alert made before it reads "not judged", never reminded; a mute made after
    it goes with a downgrade, and the alerts stay."""
    engine = connect(db_url)
    _alembic(engine, command.upgrade, "0003")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alerts (camera_id, zone, rule, state, opened_at, message, evidence, note) "
                             "VALUES ('lounge', '', 'distress', 'open', 1, 'm', '{}', '')"))  # fmt: skip
    engine.dispose()
    s = Store(db_url)  # opened: migrated to head
    old = s.list_alerts()[0]
    assert old["verdict"] is None and old["reminders"] == 0 and old["reminded_at"] is None
    assert [a["id"] for a in s.due_reminders(10_000, minutes=1, times=3)] == [old["id"]]
    s.put_mute("lounge", 2e9, "amy", "party")
    s.close()
    engine = connect(db_url)
    _alembic(engine, command.downgrade, "0003")
    with engine.connect() as conn:
        assert "mutes" not in sa.inspect(conn).get_table_names()
        assert conn.execute(sa.text("SELECT count(*) FROM alerts")).scalar() == 1
    engine.dispose()


def test_the_migrations_build_what_schema_py_says(db_url):
    """``schema.py`` and the migrations describe one schema (a column added to one only fails here)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from lrfer.serve.schema import metadata

    s = Store(db_url)
    with s.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    s.close()
    assert diff == []
