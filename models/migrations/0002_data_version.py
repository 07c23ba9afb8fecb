"""The data version: one number that every change to what a query can show replaces, in the
same transaction as the change, whoever makes it (this app, another process, the CLI, psql).

Triggers keep it, so no writer can forget to. Sessions and throttles are left out: no query
shows them, and a request checks its own session afresh every time.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

WATCHED_TABLES = [
    "users", "accounts", "sites", "memberships", "site_memberships", "recovery_codes", "audit_events",
]

CREATE_TABLE = (
    "CREATE TABLE mandate_data_version (id SMALLINT PRIMARY KEY CHECK (id = 1), version BIGINT NOT NULL)"
)
SEED_ROW = "INSERT INTO mandate_data_version (id, version) VALUES (1, 0)"

# PostgreSQL: a deferred constraint trigger takes the version row's lock only at commit, so two
# writers never wait on each other while holding other rows (no deadlock), and a transaction
# that writes many rows replaces the version once. The new value is random, never a counter:
# a database restored from a backup cannot bring back a version some process has cached under.
POSTGRES_FUNCTION = """
CREATE FUNCTION mandate_replace_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('mandate.data_version_replaced', true) IS DISTINCT FROM '1' THEN
        PERFORM set_config('mandate.data_version_replaced', '1', true);
        UPDATE mandate_data_version SET version = floor(random() * 9.0e18 - 4.5e18)::bigint WHERE id = 1;
    END IF;
    RETURN NULL;
END $$
"""


def _postgres_triggers(table: str) -> list[str]:
    return [
        f"CREATE CONSTRAINT TRIGGER mandate_data_version_{table} AFTER INSERT OR UPDATE OR DELETE"
        f" ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
        " EXECUTE FUNCTION mandate_replace_data_version()",
        f"CREATE TRIGGER mandate_data_version_truncate_{table} AFTER TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION mandate_replace_data_version()",
    ]


def _sqlite_triggers(table: str) -> list[str]:
    # One writer at a time in SQLite: a plain row trigger is already atomic with the change.
    return [
        f"CREATE TRIGGER mandate_data_version_{event.lower()}_{table} AFTER {event} ON {table}"
        " BEGIN UPDATE mandate_data_version SET version = random() WHERE id = 1; END"
        for event in ("INSERT", "UPDATE", "DELETE")
    ]


async def create_data_version(apps, schema_editor) -> None:
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    statements = [CREATE_TABLE, SEED_ROW]
    if postgres:
        statements.append(POSTGRES_FUNCTION)
    for table in WATCHED_TABLES:
        statements += _postgres_triggers(table) if postgres else _sqlite_triggers(table)
    for statement in statements:
        await client.execute_script(statement)


async def drop_data_version(apps, schema_editor) -> None:
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    for table in WATCHED_TABLES:
        if postgres:
            await client.execute_script(f"DROP TRIGGER IF EXISTS mandate_data_version_{table} ON {table}")
            await client.execute_script(f"DROP TRIGGER IF EXISTS mandate_data_version_truncate_{table} ON {table}")
        else:
            for event in ("insert", "update", "delete"):
                await client.execute_script(f"DROP TRIGGER IF EXISTS mandate_data_version_{event}_{table}")
    if postgres:
        await client.execute_script("DROP FUNCTION IF EXISTS mandate_replace_data_version()")
    await client.execute_script("DROP TABLE IF EXISTS mandate_data_version")


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [ops.RunPython(create_data_version, drop_data_version)]
