"""sagewalk: PinSage-style graph embeddings on graphs larger than memory.

The command line, the config schema and the daemons that wire the stages
(graphstore -> sampler -> worker -> gpu_consumer -> serving, with monitoring).
Nothing heavy is imported here.
"""

from common import __version__

__all__ = ["__version__"]
