"""The ground floor: what every stage and the command line build on.

`common.errors` holds the base error (the CLI prints a `SagewalkError`'s
message without a traceback and exits 2) and `common.schema` the helpers that
declare, check and build a frozen config section.  This package imports
nothing of the project, so any stage can use it without pulling in another.
"""

__version__ = "0.1.0"
