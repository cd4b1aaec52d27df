"""Admin of the members app: imports."""
