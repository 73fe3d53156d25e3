"""The first schema: cameras, tracks, observations, rollups, batches, alerts, users, tokens,
sessions, audit. A frozen copy of ``schema.py`` as it was: later changes go in new revisions.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

F, I, S, T = sa.Float, sa.Integer, sa.String, sa.Text


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", S(63), primary_key=True),
        sa.Column("site", S(64), nullable=False, server_default="main"),
        sa.Column("config", T, nullable=False),
        sa.Column("created_at", F, nullable=False),
        sa.Column("updated_at", F, nullable=False),
    )
    op.create_table(
        "tracks",
        sa.Column("id", I, primary_key=True, autoincrement=True),
        sa.Column("camera_id", S(63), nullable=False),
        sa.Column("track_key", S(80), nullable=False),
        sa.Column("first_seen", F, nullable=False),
        sa.Column("last_seen", F, nullable=False),
        sa.Column("frames", I, nullable=False, server_default="0"),
        sa.Column("certain", I, nullable=False, server_default="0"),
        sa.Column("face_px", F, nullable=False, server_default="0"),
        sa.UniqueConstraint("camera_id", "track_key", name="uq_tracks_camera_key"),
    )
    op.create_index("ix_tracks_camera_last", "tracks", ["camera_id", "last_seen"])
    op.create_table(
        "observations",
        sa.Column("id", I, primary_key=True, autoincrement=True),
        sa.Column("track_id", I, sa.ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("camera_id", S(63), nullable=False),
        sa.Column("zone", S(64), nullable=False, server_default=""),
        sa.Column("start", F, nullable=False),
        sa.Column("seconds", F, nullable=False),
        sa.Column("frames", I, nullable=False),
        sa.Column("certain", I, nullable=False),
        sa.Column("probs", T, nullable=True),
        sa.Column("label", S(32), nullable=True),
        sa.Column("face_px", F, nullable=False),
        sa.Column("score", F, nullable=False),
    )
    op.create_index("ix_observations_camera_start", "observations", ["camera_id", "start"])
    op.create_index("ix_observations_track_start", "observations", ["track_id", "start"])
    op.create_table(
        "rollups",
        sa.Column("camera_id", S(63), primary_key=True),
        sa.Column("zone", S(64), primary_key=True),
        sa.Column("res", I, primary_key=True),
        sa.Column("start", F, primary_key=True),
        sa.Column("frames", I, nullable=False),
        sa.Column("certain", I, nullable=False),
        sa.Column("tracks", I, nullable=False),
        sa.Column("sums", T, nullable=False),
    )
    op.create_index("ix_rollups_res_start", "rollups", ["res", "start"])
    op.create_table(
        "batches",
        sa.Column("batch_id", S(64), primary_key=True),
        sa.Column("received_at", F, nullable=False),
        sa.Column("observations", I, nullable=False),
    )
    _people_tables()


def _people_tables() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", I, primary_key=True, autoincrement=True),
        sa.Column("camera_id", S(63), nullable=False),
        sa.Column("zone", S(64), nullable=False, server_default=""),
        sa.Column("track_key", S(80), nullable=True),
        sa.Column("rule", S(64), nullable=False),
        sa.Column("state", S(16), nullable=False),
        sa.Column("opened_at", F, nullable=False),
        sa.Column("message", T, nullable=False),
        sa.Column("evidence", T, nullable=False),
        sa.Column("acknowledged_by", S(64), nullable=True),
        sa.Column("acknowledged_at", F, nullable=True),
        sa.Column("note", T, nullable=False, server_default=""),
        sa.Column("resolved_by", S(64), nullable=True),
        sa.Column("resolved_at", F, nullable=True),
    )
    op.create_index("ix_alerts_state_opened", "alerts", ["state", "opened_at"])
    op.create_index("ix_alerts_camera_opened", "alerts", ["camera_id", "opened_at"])
    op.create_table(
        "users",
        sa.Column("id", I, primary_key=True, autoincrement=True),
        sa.Column("username", S(64), nullable=False, unique=True),
        sa.Column("password_hash", S(255), nullable=False),
        sa.Column("role", S(16), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", F, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", I, primary_key=True, autoincrement=True),
        sa.Column("name", S(64), nullable=False),
        sa.Column("token_hash", S(64), nullable=False, unique=True),
        sa.Column("role", S(16), nullable=False),
        sa.Column("created_by", S(64), nullable=False),
        sa.Column("created_at", F, nullable=False),
        sa.Column("revoked_at", F, nullable=True),
        sa.Column("last_used", F, nullable=True),
    )
    op.create_table(
        "sessions",
        sa.Column("session_hash", S(64), primary_key=True),
        sa.Column("username", S(64), nullable=False),
        sa.Column("created_at", F, nullable=False),
        sa.Column("expires_at", F, nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("id", I, primary_key=True, autoincrement=True),
        sa.Column("at", F, nullable=False),
        sa.Column("actor", S(64), nullable=False),
        sa.Column("action", S(64), nullable=False),
        sa.Column("target", S(255), nullable=False, server_default=""),
        sa.Column("detail", T, nullable=False, server_default="{}"),
        sa.Column("ip", S(64), nullable=False, server_default=""),
    )
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    for name in ("audit", "sessions", "tokens", "users", "alerts", "batches", "rollups", "observations", "tracks", "cameras"):
        op.drop_table(name)
