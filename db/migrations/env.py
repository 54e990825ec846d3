"""Alembic environment: the URL comes from the caller (tocsin db upgrade), never from a file."""

from alembic import context

from db.session import make_engine

url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
connection = context.config.attributes.get("connection")


def run(conn) -> None:
    context.configure(connection=conn)
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:
    engine = make_engine(url, pool_size=1)  # a URL through a transaction pooler works too (db.session)
    with engine.connect() as conn:
        run(conn)
    engine.dispose()
