"""Tasks of the members app: tags."""

__all__: list[str] = []
