"""The database: SQLite by default (WAL), PostgreSQL by URL. One class, thread-safe, JSON-ready dicts.

``Store(url)`` migrates the database to the newest schema (Alembic) when it opens it. Writes of
observations come from one thread (the recorder); reads from the API's threads. Time ranges are
epoch seconds, ``[start, end)``.

Timelines read ``rollups`` (per camera, zone and minute or hour) when the bucket asked for is a
minute or longer, so a month of eight cameras at hourly buckets reads 8 x 720 rows, whatever the
number of faces; shorter buckets read the per-track observations of the range.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy.engine import Connection, Engine

from ..errors import LrferError
from .config import Camera, Retention, Rule
from .records import Observation
from .schema import cameras, mutes, observations, rollups, rules, tracks
from .store_accounts import Accounts, batch_seen, loads

#: Windows of the pre-aggregated rollups, in seconds.
ROLLUP_WINDOWS = (60, 3600)
#: face-size bands of GET /api/cameras/{id}/faces, px: below 16 no face is evidence (Evidence.min_face_px's
#: default); under 24 the model reads negative faces least often and alerts come late or never
#: (bench/results/serve_alerts.json, by face size: 5 of 12 people in time, against 27 of 31 from 36 px)
FACE_EDGES = (16, 24, 36)
_MIGRATIONS = Path(__file__).with_name("migrations")


def connect(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL (readers never block the writer) and a busy timeout."""
    try:
        engine = sa.create_engine(url, pool_pre_ping=True, future=True)
    except (sa.exc.ArgumentError, ImportError) as err:
        raise LrferError(f"not a database URL: {url!r} ({err})", "use sqlite:///path/lrfer.sqlite3 or postgresql+psycopg://user@host/db") from None
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a power cut loses at most the last commits, never corrupts
            cur.execute("PRAGMA busy_timeout=10000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema (a no-op when it is there)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store(Accounts):
    """Cameras, observations, timelines, tracks; alerts, users, tokens, sessions and audit come from
    :class:`~lrfer.serve.store_accounts.Accounts`."""

    def __init__(self, url: str):
        self.url = url
        self.engine = connect(url)
        try:
            migrate(self.engine)
        except sa.exc.OperationalError as err:
            raise LrferError(f"cannot open the database {self.safe_url} ({str(err.orig).strip().splitlines()[0]})", "check --db and that the server runs") from None
        self._track_ids: dict[tuple[str, str], int] = {}
        self._write_lock = threading.Lock()  # one writer of observations at a time (the rollups are read-modify-write)

    @property
    def safe_url(self) -> str:
        """The URL without its password (for logs and messages)."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()

    # ----------------------------------------------------------------------------- cameras
    def list_cameras(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(cameras).order_by(cameras.c.id)).mappings().all()
        return [_camera(r) for r in rows]

    def get_camera(self, camera_id: str) -> Optional[dict]:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(cameras).where(cameras.c.id == camera_id)).mappings().first()
        return _camera(row) if row else None

    def put_camera(self, camera: Camera) -> dict:
        now = time.time()
        values = {"site": camera.site, "config": camera.model_dump_json(), "updated_at": now}
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(cameras).where(cameras.c.id == camera.id).values(**values)).rowcount
            if not done:
                conn.execute(sa.insert(cameras).values(id=camera.id, created_at=now, **values))
        return self.get_camera(camera.id)

    def delete_camera(self, camera_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(mutes).where(mutes.c.camera_id == camera_id))
            return bool(conn.execute(sa.delete(cameras).where(cameras.c.id == camera_id)).rowcount)

    def put_mute(self, camera_id: str, until: float, by: str, note: str = "") -> dict:
        """Mute a camera's alerts until ``until`` (a new mute replaces the one before)."""
        values = {"until": until, "by": by, "note": note, "created_at": time.time()}
        with self.engine.begin() as conn:
            if not conn.execute(sa.update(mutes).where(mutes.c.camera_id == camera_id).values(**values)).rowcount:
                conn.execute(sa.insert(mutes).values(camera_id=camera_id, **values))
        return {"camera_id": camera_id, **values}

    def delete_mute(self, camera_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.delete(mutes).where(mutes.c.camera_id == camera_id)).rowcount)

    def active_mutes(self, now: float) -> dict[str, dict]:
        """The mutes still running at ``now``, by camera (those past are left for the purge)."""
        with self.engine.connect() as conn:
            return {r["camera_id"]: dict(r) for r in conn.execute(sa.select(mutes).where(mutes.c.until > now)).mappings()}

    # ------------------------------------------------------------------------------- rules
    def list_rules(self) -> list[Rule]:
        """The alert rules made on the dashboard, by name."""
        with self.engine.connect() as conn:
            return [Rule.model_validate_json(r) for r in conn.execute(sa.select(rules.c.config).order_by(rules.c.name)).scalars()]

    def put_rule(self, rule: Rule) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            if not conn.execute(sa.update(rules).where(rules.c.name == rule.name).values(config=rule.model_dump_json(), updated_at=now)).rowcount:
                conn.execute(sa.insert(rules).values(name=rule.name, config=rule.model_dump_json(), created_at=now, updated_at=now))

    def delete_rule(self, name: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(sa.delete(rules).where(rules.c.name == name)).rowcount)

    # ------------------------------------------------------------------------ observations
    def ingest(self, items: list[Observation], batch_id: Optional[str] = None) -> bool:
        """Store observations (and add them to the rollups) in one transaction.

        With a ``batch_id``, a batch already stored is skipped (returns False): a worker that
        retries after a lost answer never writes twice."""
        with self._write_lock, self.engine.begin() as conn:
            if batch_id is not None and batch_seen(conn, batch_id, len(items)):
                return False
            deltas: dict[tuple, dict] = {}
            for ob in sorted(items, key=lambda o: o.start):
                track_id = self._track(conn, ob)
                for res in ROLLUP_WINDOWS:
                    _add_delta(deltas, conn, ob, track_id, res)
                conn.execute(sa.insert(observations).values(track_id=track_id, **_observation_row(ob)))
            for key, d in deltas.items():
                _apply_rollup(conn, key, d)
        return True

    def _track(self, conn: Connection, ob: Observation) -> int:
        """The track's row id, created on its first observation; its last_seen, frames and size kept up."""
        key = (ob.camera_id, ob.track_key)
        tid = self._track_ids.get(key)
        if tid is None:
            tid = conn.execute(sa.select(tracks.c.id).where(tracks.c.camera_id == ob.camera_id, tracks.c.track_key == ob.track_key)).scalar()
        end = ob.start + ob.seconds
        if tid is None:
            tid = conn.execute(
                sa.insert(tracks).values(
                    camera_id=ob.camera_id, track_key=ob.track_key, first_seen=ob.start, last_seen=end, frames=ob.frames, certain=ob.certain, face_px=ob.face_px
                )
            ).inserted_primary_key[0]
        else:
            # face_px: a running mean weighted by frames (the per-bucket medians are in observations).
            n = tracks.c.frames + ob.frames
            conn.execute(
                sa.update(tracks)
                .where(tracks.c.id == tid)
                .values(
                    last_seen=sa.func.max(tracks.c.last_seen, end) if conn.dialect.name == "sqlite" else sa.func.greatest(tracks.c.last_seen, end),
                    face_px=(tracks.c.face_px * tracks.c.frames + ob.face_px * ob.frames) / sa.func.nullif(n, 0),
                    frames=n,
                    certain=tracks.c.certain + ob.certain,
                )
            )
        if len(self._track_ids) > 100_000:  # a cache, not a record: months of tracks must not grow it
            self._track_ids.clear()
        self._track_ids[key] = tid
        return tid

    def timeline(self, camera_id: Optional[str], start: float, end: float, bucket: int, zone: Optional[str] = None) -> dict:
        """Shares of each expression per bucket (None where no face was certain), with frames and tracks.

        ``tracks`` in a bucket built from several windows is the largest window's count (the zones
        of one window added up): about a lower bound of the distinct people, which is what a
        k-anonymity threshold needs."""
        bucket = max(1, int(bucket))
        res = next((r for r in sorted(ROLLUP_WINDOWS, reverse=True) if bucket >= r and bucket % r == 0), None)
        rows = self.rollup_rows(camera_id, zone, start, end, res) if res else self._observation_rows(camera_id, zone, start, end)
        points: dict[float, dict] = {}
        classes: list[str] = []
        people: dict[float, dict[float, int]] = {}  # bucket -> window -> tracks, summed over zones
        for t, frames, certain, n_tracks, sums in rows:
            key = math.floor(t / bucket) * bucket
            p = points.setdefault(key, {"t": key, "frames": 0, "certain": 0, "tracks": 0, "sums": {}})
            p["frames"] += frames
            p["certain"] += certain
            per_window = people.setdefault(key, {})
            per_window[t] = per_window.get(t, 0) + n_tracks
            p["tracks"] = max(per_window.values())
            for c, v in sums.items():
                p["sums"][c] = p["sums"].get(c, 0.0) + v
                if c not in classes:
                    classes.append(c)
        out = []
        for key in sorted(points):
            p = points[key]
            sums = p.pop("sums")
            p["shares"] = {c: (round(sums.get(c, 0.0) / p["certain"], 4) if p["certain"] else None) for c in classes}
            out.append(p)
        return {"classes": classes, "bucket": bucket, "start": start, "end": end, "points": out}

    def rollup_rows(self, camera_id: Optional[str], zone: Optional[str], start: float, end: float, res: int) -> Iterator[tuple]:
        """``(window start, frames, certain, tracks, sums)`` of the ``res``-second rollup windows
        (one of ROLLUP_WINDOWS) starting in ``[start, end)``, per camera and zone."""
        q = sa.select(rollups).where(rollups.c.res == res, rollups.c.start >= start, rollups.c.start < end)
        if camera_id:
            q = q.where(rollups.c.camera_id == camera_id)
        if zone is not None:
            q = q.where(rollups.c.zone == zone)
        with self.engine.connect() as conn:
            for r in conn.execute(q).mappings():
                yield r["start"], r["frames"], r["certain"], r["tracks"], loads(r["sums"])

    def _observation_rows(self, camera_id, zone, start, end) -> Iterator[tuple]:
        """Per start time: the tracks' observations summed (a short range: minutes to hours)."""
        q = sa.select(observations.c.start, observations.c.frames, observations.c.certain, observations.c.probs).where(
            observations.c.start >= start, observations.c.start < end
        )
        if camera_id:
            q = q.where(observations.c.camera_id == camera_id)
        if zone is not None:
            q = q.where(observations.c.zone == zone)
        by_start: dict[float, list] = {}
        with self.engine.connect() as conn:
            for t, frames, certain, probs in conn.execute(q):
                acc = by_start.setdefault(t, [0, 0, 0, {}])
                acc[0] += frames
                acc[1] += certain
                acc[2] += 1
                for c, v in (loads(probs) or {}).items():
                    acc[3][c] = acc[3].get(c, 0.0) + v * certain
        for t, (frames, certain, n, sums) in by_start.items():
            yield t, frames, certain, n, sums

    def tracks(self, camera_id: str, start: float, end: float, limit: int = 200) -> list[dict]:
        """Tracks seen in the range, most recent first, with the seconds each expression was on top."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tracks)
                .where(tracks.c.camera_id == camera_id, tracks.c.last_seen >= start, tracks.c.first_seen < end)
                .order_by(tracks.c.last_seen.desc())
                .limit(limit)
            ).mappings().all()
            ids = [r["id"] for r in rows]
            secs: dict[int, dict[str, float]] = {i: {} for i in ids}
            if ids:
                q = (
                    sa.select(observations.c.track_id, observations.c.label, sa.func.sum(observations.c.seconds))
                    .where(observations.c.track_id.in_(ids), observations.c.label.is_not(None), observations.c.start >= start, observations.c.start < end)
                    .group_by(observations.c.track_id, observations.c.label)
                )
                for tid, label, s in conn.execute(q):
                    secs[tid][label] = round(float(s), 3)
        return [{**dict(r), "face_px": round(r["face_px"], 1), "seconds": secs[r["id"]]} for r in rows]

    def face_sizes(self, camera_id: str, start: float, end: float, edges: tuple[int, ...] = FACE_EDGES) -> list[dict]:
        """The camera's observations in ``[start, end)`` by face size (each bucket's median face):
        per band (below ``edges[0]``, between each two edges, from the last one) the frames, the
        certain frames and the tracks, counted by the database."""
        band = sa.case(*[(observations.c.face_px < e, i) for i, e in enumerate(edges)], else_=len(edges))
        q = (
            sa.select(band, sa.func.sum(observations.c.frames), sa.func.sum(observations.c.certain), sa.func.count(sa.distinct(observations.c.track_id)))
            .where(observations.c.camera_id == camera_id, observations.c.start >= start, observations.c.start < end)
            .group_by(band)
        )
        with self.engine.connect() as conn:
            got = {int(b): (int(f or 0), int(c or 0), int(t or 0)) for b, f, c, t in conn.execute(q)}
        bounds = [0, *edges, None]
        out = []
        for i in range(len(edges) + 1):
            frames, certain, n_tracks = got.get(i, (0, 0, 0))
            out.append({"min_px": bounds[i], "max_px": bounds[i + 1], "frames": frames, "certain": certain, "tracks": n_tracks})
        return out

    def export_observations(self, camera_id: Optional[str], start: float, end: float) -> Iterator[dict]:
        """Observations of the range, oldest first, one flat dict each (``p_<class>`` columns), streamed."""
        q = (
            sa.select(observations, tracks.c.track_key)
            .join(tracks, tracks.c.id == observations.c.track_id)
            .where(observations.c.start >= start, observations.c.start < end)
            .order_by(observations.c.start, observations.c.id)
        )
        if camera_id:
            q = q.where(observations.c.camera_id == camera_id)
        with self.engine.connect() as conn:
            for r in conn.execution_options(yield_per=1000).execute(q).mappings():
                row = {k: r[k] for k in ("camera_id", "track_key", "zone", "start", "seconds", "frames", "certain", "label", "face_px", "score")}
                row.update({f"p_{c}": v for c, v in (loads(r["probs"]) or {}).items()})
                yield row

    def delete_observations(self, camera_id: Optional[str], start: float, end: float) -> int:
        """Delete the range's observations, rebuild the rollups they touched, drop emptied tracks."""
        with self._write_lock, self.engine.begin() as conn:
            where = [observations.c.start >= start, observations.c.start < end]
            if camera_id:
                where.append(observations.c.camera_id == camera_id)
            n = conn.execute(sa.delete(observations).where(*where)).rowcount
            for res in ROLLUP_WINDOWS:
                _rebuild_rollups(conn, camera_id, math.floor(start / res) * res, end, res)
            _drop_empty_tracks(conn, camera_id)
        self._track_ids.clear()
        return n

    def purge(self, now: float, retention: Retention) -> dict:
        """Delete what is older than the retention periods (observations, tracks, rollups; alerts; audit)."""
        cut = now - retention.days * 86400
        with self._write_lock, self.engine.begin() as conn:
            n_obs = conn.execute(sa.delete(observations).where(observations.c.start < cut)).rowcount
            n_roll = conn.execute(sa.delete(rollups).where(rollups.c.start < cut)).rowcount
            n_tracks = conn.execute(sa.delete(tracks).where(tracks.c.last_seen < cut)).rowcount
            conn.execute(sa.delete(mutes).where(mutes.c.until <= now))  # ended: nothing to keep
        self._track_ids.clear()
        return {"observations": n_obs, "rollups": n_roll, "tracks": n_tracks, **self.purge_accounts(now, retention)}


def _camera(row) -> dict:
    return {**json.loads(row["config"]), "created_at": row["created_at"], "updated_at": row["updated_at"]}


def _observation_row(ob: Observation) -> dict[str, Any]:
    label = max(ob.probs, key=ob.probs.get) if ob.probs else None
    probs = json.dumps({c: round(float(v), 5) for c, v in ob.probs.items()}) if ob.probs else None
    return {
        "camera_id": ob.camera_id,
        "zone": ob.zone,
        "start": ob.start,
        "seconds": ob.seconds,
        "frames": ob.frames,
        "certain": ob.certain,
        "probs": probs,
        "label": label,
        "face_px": ob.face_px,
        "score": ob.score,
    }


def _accumulate(deltas: dict, camera_id: str, zone: str, res: int, start: float, frames: int, certain: int, probs: Optional[dict]) -> dict:
    """Add one observation's frames and probability sums to its rollup window's delta; the delta."""
    key = (camera_id, zone, res, float(math.floor(start / res) * res))
    d = deltas.setdefault(key, {"frames": 0, "certain": 0, "tracks": 0, "sums": {}, "seen": set()})
    d["frames"] += frames
    d["certain"] += certain
    for c, v in (probs or {}).items():
        d["sums"][c] = d["sums"].get(c, 0.0) + v * certain
    return d


def _add_delta(deltas: dict, conn: Connection, ob: Observation, track_id: int, res: int) -> None:
    """What one observation adds to its rollup window: frames, sums, and one track if it is new there."""
    d = _accumulate(deltas, ob.camera_id, ob.zone, res, ob.start, ob.frames, ob.certain, ob.probs)
    if track_id in d["seen"]:
        return
    d["seen"].add(track_id)
    w = math.floor(ob.start / res) * res
    earlier = conn.execute(
        sa.select(observations.c.id)
        .where(observations.c.track_id == track_id, observations.c.zone == ob.zone, observations.c.start >= w, observations.c.start < w + res)
        .limit(1)
    ).first()
    if earlier is None:
        d["tracks"] += 1


def _apply_rollup(conn: Connection, key: tuple, d: dict) -> None:
    camera_id, zone, res, start = key
    where = (rollups.c.camera_id == camera_id, rollups.c.zone == zone, rollups.c.res == res, rollups.c.start == start)
    row = conn.execute(sa.select(rollups).where(*where)).mappings().first()
    if row is None:
        sums = {c: round(v, 5) for c, v in d["sums"].items()}
        conn.execute(sa.insert(rollups).values(camera_id=camera_id, zone=zone, res=res, start=start, frames=d["frames"], certain=d["certain"], tracks=d["tracks"], sums=json.dumps(sums)))
        return
    sums = loads(row["sums"])
    for c, v in d["sums"].items():
        sums[c] = round(sums.get(c, 0.0) + v, 5)
    conn.execute(
        sa.update(rollups)
        .where(*where)
        .values(frames=row["frames"] + d["frames"], certain=row["certain"] + d["certain"], tracks=row["tracks"] + d["tracks"], sums=json.dumps(sums))
    )


def _rebuild_rollups(conn: Connection, camera_id: Optional[str], start: float, end: float, res: int) -> None:
    """Recompute the rollup windows of ``[start, end)`` from the observations left there."""
    where = [rollups.c.res == res, rollups.c.start >= start, rollups.c.start < end]
    owhere = [observations.c.start >= start, observations.c.start < math.ceil(end / res) * res]
    if camera_id:
        where.append(rollups.c.camera_id == camera_id)
        owhere.append(observations.c.camera_id == camera_id)
    conn.execute(sa.delete(rollups).where(*where))
    deltas: dict[tuple, dict] = {}
    q = sa.select(observations).where(*owhere).order_by(observations.c.start)
    for r in conn.execute(q).mappings().all():
        d = _accumulate(deltas, r["camera_id"], r["zone"], res, r["start"], r["frames"], r["certain"], loads(r["probs"]))
        if r["track_id"] not in d["seen"]:
            d["seen"].add(r["track_id"])
            d["tracks"] += 1
    for key, d in deltas.items():
        _apply_rollup(conn, key, d)


def _drop_empty_tracks(conn: Connection, camera_id: Optional[str]) -> None:
    has_obs = sa.select(observations.c.id).where(observations.c.track_id == tracks.c.id).exists()
    q = sa.delete(tracks).where(~has_obs)
    if camera_id:
        q = q.where(tracks.c.camera_id == camera_id)
    conn.execute(q)
