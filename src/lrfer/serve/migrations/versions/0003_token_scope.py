"""A worker token's scope: the site and the cameras it may write (both NULL, unscoped, for the
tokens made before, which keep working as they did).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # nullable columns without a server default: SQLite adds them in place (no table copy), and every
    # existing row reads NULL, which the service takes for "unscoped"
    op.add_column("tokens", sa.Column("site", sa.String(64), nullable=True))
    op.add_column("tokens", sa.Column("cameras", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("cameras")
        batch.drop_column("site")
