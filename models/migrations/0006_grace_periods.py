"""Grace periods (API.md "Grace periods"): an account's switch carries the hours a user it binds
may go on without 2FA (`accounts.grace_period_hours`, 0 for every switch made before: rule 2 as
it was), and `grace_periods` holds when each user was first seen bound without 2FA, one row per
user, written only by that user's own requests.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0005_totp_devices")]

    operations = [
        ops.AddField(
            model_name="Account",
            name="grace_period_hours",
            field=fields.IntField(default=0, db_default=0),  # the rows already there: no grace
        ),
        ops.CreateModel(
            name="GracePeriod",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("user", fields.OneToOneField(
                    "models.User", source_field="user_id", db_constraint=True, to_field="id",
                    related_name="grace_period", on_delete=OnDelete.CASCADE,
                )),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "grace_periods", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
