"""Decoded MiniBatch -> TensorBatch, on the receive thread.

The index arrays travel narrow (int32) and the model wants int64.  Widening
them here with numpy, before `TensorBatch.from_minibatch`, keeps the
conversion single-threaded: torch would run each `.to(int64)` of more than
32k elements on its intra-op thread pool, whose spinning threads then compete
with ZeroMQ's I/O threads for the cores — on this 2-core machine that cut
the stream from ~1.8 GB/s to ~0.4 GB/s.  Arrays already of the right dtype
(node ids, float16 features) are wrapped without a copy.

Test-only fault injection: with SAGEWALK_TEST_BAD_BATCH="EPOCH:BATCH" in the
trainer's environment, the batch of that ticket gets out-of-range node
indices, as a bad batch the decoder let through would, so the training step
itself fails (tests/e2e/test_faults_more.py).  Never set it in production.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

import numpy as np

from gpu_consumer.tensors import TensorBatch
from worker.batch import POSITION_FIELDS, MiniBatch

log = logging.getLogger(__name__)
BAD_BATCH_ENV = "SAGEWALK_TEST_BAD_BATCH"


def to_tensor_batch(batch: MiniBatch, *, pin: bool) -> TensorBatch:
    batch = widen(batch)
    if os.environ.get(BAD_BATCH_ENV) == f"{batch.ticket.epoch}:{batch.ticket.batch}":
        batch = spoil(batch)
    return TensorBatch.from_minibatch(batch, pin=pin)


def spoil(batch: MiniBatch) -> MiniBatch:
    """The batch with its queries pointing far past every node set (test-only)."""
    log.warning("%s: spoiling the batch of %s (test-only fault injection)", BAD_BATCH_ENV,
                batch.ticket)
    return replace(batch, queries=batch.queries + (1 << 40))


def widen(batch: MiniBatch) -> MiniBatch:
    """The MiniBatch with every index array int64 and weights float32."""
    graph = batch.graph
    blocks = tuple(replace(b, neighbor_index=_as(b.neighbor_index, np.int64),
                           neighbor_weight=_as(b.neighbor_weight, np.float32),
                           context_index=_as(b.context_index, np.int64)) for b in graph.blocks)
    graph = replace(graph, node_sets=tuple(_as(n, np.int64) for n in graph.node_sets),
                    blocks=blocks, context_types=_as(graph.context_types, np.int64),
                    context_ids=_as(graph.context_ids, np.int64))
    return replace(batch, graph=graph,
                   **{name: _as(getattr(batch, name), np.int64) for name in POSITION_FIELDS})


def _as(array, dtype):
    if array is None or array.dtype == dtype:
        return array
    return array.astype(dtype)
