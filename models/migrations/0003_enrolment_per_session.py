"""A pending enrolment belongs to the session that started it (API.md "Enrolment belongs to its
session"): its secret moves from users.totp_pending_secret to sessions.totp_pending_secret.

A column on the session rather than a table of its own: one pending enrolment per session holds
by construction, it ends when the session does (revoked or expired, nothing to clean up), and it
is read with the session in the statement that authenticates the request.

The users' pending secrets are dropped, not moved: nothing says which session started them, and
tying one to every session of its user would let any of them confirm it, which is the take-over
this migration ends. A user who was half-way through enrolling presses enrolTotp again.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class DropColumnInPlace(ops.RemoveField):
    """RemoveField by ALTER TABLE ... DROP COLUMN, on SQLite too (3.35 and later): tortoise's
    SQLite editor rebuilds the table instead, and dropping the old `users` would cascade to every
    row that references it and take migration 0002's triggers with it."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not state_editor:
            return
        model = old_state.apps.get_model(f"{app_label}.{self.model_name}")
        await state_editor.client.execute_script(
            f'ALTER TABLE "{model._meta.db_table}" DROP COLUMN "{self.name}"'
        )


class Migration(migrations.Migration):
    dependencies = [("models", "0002_data_version")]

    operations = [
        ops.AddField(
            model_name="Session",
            name="totp_pending_secret",
            field=fields.TextField(null=True, unique=False),
        ),
        DropColumnInPlace(model_name="User", name="totp_pending_secret"),
    ]
