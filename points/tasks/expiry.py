"""Expiry of due lots (written by the points-ledger helper)."""
