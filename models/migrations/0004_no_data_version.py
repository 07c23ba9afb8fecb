"""The response cache is gone, and with it the data version it was keyed on (migration 0002):
its table, its function and the triggers on every watched table, which made every write
transaction update one global row at commit.

Reversed, 0002's own code puts them back.
"""

from importlib import import_module

from tortoise import migrations
from tortoise.migrations import operations as ops

_DATA_VERSION = import_module(f"{__package__}.0002_data_version")


class Migration(migrations.Migration):
    dependencies = [("models", "0003_enrolment_per_session")]

    operations = [ops.RunPython(_DATA_VERSION.drop_data_version, _DATA_VERSION.create_data_version)]
