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

from mandate.models.migrations._operations import DropColumnInPlace


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
