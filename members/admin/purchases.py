"""Admin of the members app: purchases."""
