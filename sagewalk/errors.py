"""The base errors, defined on the ground floor (`common.errors`) so that every
stage can raise them without importing the command-line package."""

from common.errors import ConfigError, SagewalkError

__all__ = ["SagewalkError", "ConfigError"]
