"""`sagewalk embed --engine ray`: the layer-wise job on Ray Data (optional extra).

Not implemented in this version: the local engine (serving/embed.py) is the
supported one.  The design it would follow: each stage a Ray Data
`map_batches` over node-range shards named by range (so a retried shard
rewrites the same rows and cannot duplicate output), writing into the same
memmapped tables and progress file as the local engine.
"""

from __future__ import annotations

from serving.embed import EmbedError, EmbedJob, EmbedResult


def embed_with_ray(job: EmbedJob) -> EmbedResult:
    try:
        import ray  # noqa: F401
    except ImportError:
        raise EmbedError("--engine ray needs Ray (pip install 'ray[data]'), and the Ray "
                         "engine is not implemented in this version; use --engine local "
                         "(the default), which runs N local processes") from None
    raise EmbedError("the Ray engine is not implemented in this version; use --engine "
                     "local (the default), which runs N local processes")
