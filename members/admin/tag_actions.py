"""Admin actions on the member list that tag and untag many members at once.

`TAG_ACTIONS` is included in the member admin's actions.
"""

TAG_ACTIONS: list = []
