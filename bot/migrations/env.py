"""Alembic environment: migrations run on a connection handed over by bot.storage.db.migrate."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `chungsuc db upgrade`, not the alembic command.")

context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
