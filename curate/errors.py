"""User-facing errors: a message worth one line, never a traceback.

The console entry points catch `UserError` and print `error: <message>`;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input (path, format, option) that they can fix."""
