"""Migration operations shared by the apps' migrations."""

from django.db import migrations


def on_postgresql_only(forward: list[str], backward: list[str]):
    """Run `forward` SQL statements (`backward` to reverse) on PostgreSQL;
    nothing on other databases (the embedded SQLite default)."""

    def run(statements):
        def apply(apps, schema_editor):
            if schema_editor.connection.vendor != "postgresql":
                return
            for statement in statements:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(run(forward), run(backward), elidable=False)
