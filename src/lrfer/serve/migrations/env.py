"""Alembic's entry: run the migrations on the connection the Store hands over (or on the URL of
``alembic.ini``-less command-line use: ``alembic -x url=sqlite:///db.sqlite3 upgrade head``)."""

from alembic import context
from sqlalchemy import create_engine

from lrfer.serve.schema import metadata

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # pragma: no cover - by hand
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as conn:
        _run(conn)
