"""Decoded MiniBatch -> TensorBatch, on the receive thread.

The index arrays travel narrow (int32) and the model wants int64.  Widening
them with numpy (`gpu_consumer.tensors.widen`, which `TensorBatch.from_minibatch`
applies) keeps the conversion single-threaded: torch would run each `.to(int64)` of more than
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

from gpu_consumer.tensors import TensorBatch, widen
from worker.batch import MiniBatch

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
