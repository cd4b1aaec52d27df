"""Admin of the members app: tags."""
