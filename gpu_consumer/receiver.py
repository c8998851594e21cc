"""Decoded MiniBatch -> TensorBatch, on the receive thread.

The index arrays travel narrow (int32) and the model wants int64.  Widening
them here with numpy, before `TensorBatch.from_minibatch`, keeps the
conversion single-threaded: torch would run each `.to(int64)` of more than
32k elements on its intra-op thread pool, whose spinning threads then compete
with ZeroMQ's I/O threads for the cores — on this 2-core machine that cut
the stream from ~1.8 GB/s to ~0.4 GB/s.  Arrays already of the right dtype
(node ids, float16 features) are wrapped without a copy.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from gpu_consumer.tensors import TensorBatch
from worker.batch import MiniBatch


def to_tensor_batch(batch: MiniBatch, *, pin: bool) -> TensorBatch:
    return TensorBatch.from_minibatch(widen(batch), pin=pin)


def widen(batch: MiniBatch) -> MiniBatch:
    """The MiniBatch with every index array int64 and weights float32."""
    graph = batch.graph
    blocks = tuple(replace(b, neighbor_index=_as(b.neighbor_index, np.int64),
                           neighbor_weight=_as(b.neighbor_weight, np.float32),
                           context_index=_as(b.context_index, np.int64)) for b in graph.blocks)
    graph = replace(graph, node_sets=tuple(_as(n, np.int64) for n in graph.node_sets),
                    blocks=blocks, context_types=_as(graph.context_types, np.int64),
                    context_ids=_as(graph.context_ids, np.int64))
    return replace(batch, graph=graph, queries=_as(batch.queries, np.int64),
                   positives=_as(batch.positives, np.int64),
                   easy_negatives=_as(batch.easy_negatives, np.int64),
                   hard_negatives=_as(batch.hard_negatives, np.int64))


def _as(array, dtype):
    if array is None or array.dtype == dtype:
        return array
    return array.astype(dtype)
