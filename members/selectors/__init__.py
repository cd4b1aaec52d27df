"""Reads of the members app that are more than one line of ORM, one module per
area: `members` (find and filter), `purchases`, `tags`."""
