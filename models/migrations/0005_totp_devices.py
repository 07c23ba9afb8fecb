"""A TOTP device row of its own (tables.TotpDevice): the confirmed secret and the last used step
move from `users` to `totp_devices`, so a login writes the device row, never the users table.

Every confirmed secret is copied with its last used step; its confirmation time is that of the
user's last TOTP_CONFIRMED audit event, else the user's creation. Recovery codes, pending
enrolments (on sessions) and the second factor's failure counts (`throttles`, keyed per user,
since confirmTotp is throttled before any device exists) stay where they are. Then
`users.totp_secret` and `users.totp_last_step` are dropped.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from mandate.models.migrations._operations import DropColumnInPlace

COPY_DEVICES = """
INSERT INTO totp_devices (user_id, secret, last_step, confirmed_at, created_at)
SELECT id, totp_secret, totp_last_step, at, at FROM (
    SELECT u.id, u.totp_secret, u.totp_last_step, COALESCE(
        (SELECT MAX(e.at) FROM audit_events e WHERE e.subject_id = u.id AND e.action = 'TOTP_CONFIRMED'),
        u.created_at
    ) AS at
    FROM users u WHERE u.totp_secret IS NOT NULL
) AS confirmed
"""


async def copy_devices(apps, schema_editor) -> None:
    await schema_editor.client.execute_script(COPY_DEVICES)


class Migration(migrations.Migration):
    dependencies = [("models", "0004_no_data_version")]

    operations = [
        ops.CreateModel(
            name="TotpDevice",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("user", fields.OneToOneField(
                    "models.User", source_field="user_id", db_constraint=True, to_field="id",
                    related_name="totp_device", on_delete=OnDelete.CASCADE,
                )),
                ("secret", fields.TextField(unique=False)),
                ("last_step", fields.BigIntField(default=0)),
                ("confirmed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "totp_devices", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.RunPython(copy_devices),
        DropColumnInPlace(model_name="User", name="totp_last_step"),
        DropColumnInPlace(model_name="User", name="totp_secret"),
    ]
