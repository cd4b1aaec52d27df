"""Birthday bonuses (written by the points-earning helper)."""
