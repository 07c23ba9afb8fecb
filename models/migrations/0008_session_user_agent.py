"""Sessions keep the User-Agent of the login that opened them (`User.sessions`). Sessions opened
before it have none (null)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0007_api_tokens")]

    operations = [
        ops.AddField(
            model_name="Session",
            name="user_agent",
            field=fields.CharField(max_length=256, null=True, unique=False),
        ),
    ]
