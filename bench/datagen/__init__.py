"""Large, realistic, deterministic members and purchases for one shop.

`rows` makes the rows (pure Python, from a seed); `load` streams them into
PostgreSQL with COPY and sets the members' figures. `manage.py
generate_members` and the benchmarks call `generate()`.
"""

from .load import NeedsPostgres, Report, Step, ensure_stores, generate

__all__ = ["NeedsPostgres", "Report", "Step", "ensure_stores", "generate"]
