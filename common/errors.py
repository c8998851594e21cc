"""The base errors.  The CLI prints their message (no traceback) and exits 2.

Every message says what was wrong, where, what was expected and how to fix it.
Each stage derives its own errors from `SagewalkError` next to the code that
raises them.
"""


class SagewalkError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(SagewalkError):
    """A config file or override is invalid; the message names the dotted path."""
