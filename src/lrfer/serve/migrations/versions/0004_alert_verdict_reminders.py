"""Staff's verdict on an alert: "real" or "false_alarm" (NULL: not judged), so a site can see how
often its alerts are right; the reminders sent while an alert stays open; and cameras whose alerts
staff have muted for a while.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable, no server default: SQLite adds it in place, and every earlier alert reads "not judged"
    op.add_column("alerts", sa.Column("verdict", sa.String(16), nullable=True))
    op.add_column("alerts", sa.Column("reminders", sa.Integer, nullable=False, server_default="0"))
    op.add_column("alerts", sa.Column("reminded_at", sa.Float, nullable=True))
    op.create_table(
        "mutes",
        sa.Column("camera_id", sa.String(63), primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mutes")
    with op.batch_alter_table("alerts") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("reminded_at")
        batch.drop_column("reminders")
        batch.drop_column("verdict")
