"""Admin of the members app: members."""
