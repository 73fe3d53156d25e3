"""The database's tables (SQLAlchemy Core). ``migrations/`` creates and evolves them with Alembic.

Times are epoch seconds in double-precision floats: one type on SQLite and PostgreSQL, no time
zone to get wrong. No table holds a face image or an embedding: a track is an anonymous number.

Reading a month of eight cameras must not scan per-track rows, so each observation also adds to
``rollups``: per camera, zone and window (a minute, an hour) the frames, the certain frames, the
sum of the certain frames' probabilities per expression and the number of distinct tracks.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

cameras = sa.Table(
    "cameras",
    metadata,
    sa.Column("id", sa.String(63), primary_key=True),
    sa.Column("site", sa.String(64), nullable=False, server_default="main"),
    sa.Column("config", sa.Text, nullable=False),  # config.Camera as JSON
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

tracks = sa.Table(
    "tracks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(63), nullable=False),
    sa.Column("track_key", sa.String(80), nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False, server_default="0"),
    sa.Column("certain", sa.Integer, nullable=False, server_default="0"),
    sa.Column("face_px", sa.Float, nullable=False, server_default="0"),  # median over its buckets, running
    sa.UniqueConstraint("camera_id", "track_key", name="uq_tracks_camera_key"),
    sa.Index("ix_tracks_camera_last", "camera_id", "last_seen"),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("camera_id", sa.String(63), nullable=False),
    sa.Column("zone", sa.String(64), nullable=False, server_default=""),
    sa.Column("start", sa.Float, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("certain", sa.Integer, nullable=False),
    sa.Column("probs", sa.Text, nullable=True),  # JSON {class: mean probability}, NULL without evidence
    sa.Column("label", sa.String(32), nullable=True),  # top class of probs
    sa.Column("face_px", sa.Float, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Index("ix_observations_camera_start", "camera_id", "start"),
    sa.Index("ix_observations_track_start", "track_id", "start"),
)

rollups = sa.Table(
    "rollups",
    metadata,
    sa.Column("camera_id", sa.String(63), primary_key=True),
    sa.Column("zone", sa.String(64), primary_key=True),
    sa.Column("res", sa.Integer, primary_key=True),  # window length in seconds: 60 or 3600
    sa.Column("start", sa.Float, primary_key=True),
    sa.Column("frames", sa.Integer, nullable=False),
    sa.Column("certain", sa.Integer, nullable=False),
    sa.Column("tracks", sa.Integer, nullable=False),
    sa.Column("sums", sa.Text, nullable=False),  # JSON {class: sum over certain frames of the probability}
    sa.Index("ix_rollups_res_start", "res", "start"),
)

batches = sa.Table(  # ingest batch ids already stored: a retry never writes twice
    "batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.Column("observations", sa.Integer, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(63), nullable=False),
    sa.Column("zone", sa.String(64), nullable=False, server_default=""),
    sa.Column("track_key", sa.String(80), nullable=True),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | acknowledged | resolved
    sa.Column("opened_at", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("acknowledged_by", sa.String(64), nullable=True),
    sa.Column("acknowledged_at", sa.Float, nullable=True),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("resolved_by", sa.String(64), nullable=True),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("verdict", sa.String(16), nullable=True),  # staff's: real | false_alarm; NULL: not judged
    sa.Column("reminders", sa.Integer, nullable=False, server_default="0"),  # times sent again while open
    sa.Column("reminded_at", sa.Float, nullable=True),
    sa.Index("ix_alerts_state_opened", "state", "opened_at"),
    sa.Index("ix_alerts_camera_opened", "camera_id", "opened_at"),
)

mutes = sa.Table(
    "mutes",  # a camera whose alerts staff have silenced for a while (a party in the lounge)
    metadata,
    sa.Column("camera_id", sa.String(63), primary_key=True),
    sa.Column("until", sa.Float, nullable=False),
    sa.Column("by", sa.String(64), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", sa.Float, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),  # admin | staff
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", sa.Float, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex; the token itself is shown once
    sa.Column("role", sa.String(16), nullable=False),  # worker | integration | admin | staff
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("last_used", sa.Float, nullable=True),
    # A worker token's scope (NULL: unscoped, as every token made before revision 0003): the site its
    # cameras belong to, and/or the camera ids (a JSON list) it may write.
    sa.Column("site", sa.String(64), nullable=True),
    sa.Column("cameras", sa.Text, nullable=True),
)

rules = sa.Table(  # alert rules made on the dashboard (the config file's are not stored: the file holds them)
    "rules",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),  # config.Rule as JSON
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(255), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    sa.Column("ip", sa.String(64), nullable=False, server_default=""),
    sa.Index("ix_audit_at", "at"),
)
