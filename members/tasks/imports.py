"""Tasks of the members app: imports."""

__all__: list[str] = []
