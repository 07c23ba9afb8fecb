"""Operations the migrations share (a module whose name starts with `_` is not a migration)."""

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
