"""User-facing errors.

Anything a user can fix (a wrong path, a missing key, an unknown task) is raised as a
`VlascopeError`; the CLI prints its message as one line and exits non-zero, no traceback.
"""


class VlascopeError(Exception):
    """An error caused by the user's input, with a message that says what was expected."""
