"""A deterministic stand-in for the sampler's BatchBuilder, for transport tests.

It builds well-formed MiniBatches from the records alone (no store, no
kernels), so the wire and the transport can be tested on their own; the
end-to-end tests use the real `worker.assemble.BatchBuilder`.
"""

from __future__ import annotations

import numpy as np

from sampler.records import Block, ComputationGraph
from worker.batch import MiniBatch
from worker.ticket import Ticket


def synthetic_batch(ticket: Ticket, *, targets: int = 16, dim: int = 8, k: int = 3,
                    dtype=np.float32) -> MiniBatch:
    """A 1-layer MiniBatch whose contents are a pure function of the ticket."""
    rng = np.random.default_rng(ticket.seed)
    sources = targets * 2
    nodes0 = rng.permutation(10 * sources)[:sources].astype(np.int64)
    block = Block(targets, rng.integers(0, sources, (targets, k)).astype(np.int32),
                  rng.random((targets, k), dtype=np.float32))
    graph = ComputationGraph((nodes0, nodes0[:targets]), (block,))
    half = targets // 2
    hard = rng.integers(0, targets, (half, ticket.hard_negatives)).astype(np.int32)
    easy = np.arange(min(4, targets), dtype=np.int32)
    logq = None
    if ticket.hard_negatives:          # as the builder sends them: float16, easy then hard
        logq = rng.random((half, easy.size + ticket.hard_negatives)).astype(np.float16)
    return MiniBatch(ticket, graph, rng.random((sources, dim)).astype(dtype),
                     np.arange(half, dtype=np.int32), np.arange(half, 2 * half, dtype=np.int32),
                     easy, hard, negative_logq=logq)


class SyntheticBuilder:
    """Same surface as BatchBuilder for what producers use."""

    digest = "synthetic-digest"

    def __init__(self, spec=None, *, delay_s: float = 0.0, targets: int = 16, dim: int = 8):
        self.delay_s = delay_s
        self.targets = targets
        self.dim = dim

    def build(self, ticket: Ticket) -> MiniBatch:
        if self.delay_s:
            import time
            time.sleep(self.delay_s)
        return synthetic_batch(ticket, targets=self.targets, dim=self.dim)


def assert_batches_equal(a: MiniBatch, b: MiniBatch) -> None:
    left, right = a.to_arrays(), b.to_arrays()
    assert left.keys() == right.keys()
    for name in left:
        assert left[name].dtype == right[name].dtype, name
        np.testing.assert_array_equal(left[name], right[name], err_msg=name)


def make_builder(spec) -> SyntheticBuilder:
    """Producer builder factory ("synthetic:make_builder") for supervisor tests."""
    return SyntheticBuilder(spec, delay_s=0.02)


def make_big_builder(spec) -> SyntheticBuilder:
    """1 MiB batches (4096 x 64 float32 features), for memory-bound tests."""
    return SyntheticBuilder(spec, targets=2048, dim=64)
