"""API tokens for automation scripts (tables.ApiToken): a table of their own, hashes only."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0006_grace_periods")]

    operations = [
        ops.CreateModel(
            name="ApiToken",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("user", fields.ForeignKeyField(
                    "models.User", source_field="user_id", db_index=True, db_constraint=True, to_field="id",
                    related_name="api_tokens", on_delete=OnDelete.CASCADE,
                )),
                ("name", fields.CharField(max_length=200)),
                ("token_hash", fields.CharField(unique=True, max_length=64)),
                ("scopes", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_used_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "api_tokens", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
