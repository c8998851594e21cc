"""Random but well-formed minibatches for model and training tests (no sampler needed)."""

from __future__ import annotations

import numpy as np

from gpu_consumer.tensors import TensorBatch
from sampler.records import Block, ComputationGraph
from worker.batch import MiniBatch
from worker.ticket import Ticket


def make_minibatch(seed: int = 0, *, num_nodes: int = 200, batch_size: int = 8,
                   easy: int = 6, hard: int = 2, layers: int = 2, fanout: int = 4,
                   feature_dim: int = 5, context_types: int = 0, context_dims=(3, 0),
                   num_context_nodes: int = 50, features=None, padding: float = 0.25,
                   epoch: int = 0) -> MiniBatch:
    """A K-layer computation graph over random nodes; `features` (a [num_nodes, d]
    array) makes the input features a function of the node id, as in a store."""
    rng = np.random.default_rng(seed)
    num_targets = 2 * batch_size + easy + batch_size * hard
    perm = rng.permutation(num_nodes)
    targets = perm[:min(num_targets, num_nodes)]
    sets = [targets]
    for _ in range(layers):  # each earlier layer's set extends the later one
        grown = min(num_nodes, len(sets[0]) * 2)
        sets.insert(0, perm[:grown])
    node_sets = tuple(np.asarray(s, dtype=np.int64) for s in sets)
    blocks = []
    ctx_count = num_context_nodes if context_types else 0
    for k in range(layers):
        num_dst, num_src = len(node_sets[k + 1]), len(node_sets[k])
        index = rng.integers(0, num_src, size=(num_dst, fanout)).astype(np.int32)
        weight = rng.random((num_dst, fanout)).astype(np.float32)
        pad = rng.random((num_dst, fanout)) < padding
        index[pad], weight[pad] = 0, 0.0
        sums = weight.sum(1, keepdims=True)
        weight = np.divide(weight, sums, out=np.zeros_like(weight), where=sums > 0)
        ctx = None
        if context_types:
            ctx = rng.integers(0, ctx_count, size=(num_dst, fanout)).astype(np.int32)
            ctx[pad] = -1
        blocks.append(Block(num_dst, index, weight, ctx))
    ctypes = cids = None
    context_features = ()
    if context_types:
        ctypes = (np.arange(ctx_count) % context_types).astype(np.int16)
        cids = rng.integers(0, 1000, size=ctx_count).astype(np.int64)
        context_features = tuple(
            rng.standard_normal(((ctypes == t).sum(), context_dims[t])).astype(np.float16)
            for t in range(context_types))
    graph = ComputationGraph(node_sets, tuple(blocks), ctypes, cids)
    if features is None:
        feats = rng.standard_normal((len(node_sets[0]), feature_dim)).astype(np.float16)
    else:
        feats = np.asarray(features)[node_sets[0]]
    n_t = len(targets)
    pos = rng.permutation(n_t).astype(np.int32)
    queries, positives = pos[:batch_size], pos[batch_size:2 * batch_size]
    easy_neg = rng.integers(0, n_t, size=easy).astype(np.int32)
    hard_neg = rng.integers(0, n_t, size=(batch_size, hard)).astype(np.int32)
    return MiniBatch(Ticket(epoch, seed, seed, hard), graph, feats, queries, positives,
                     easy_neg, hard_neg, context_features)


def make_batch(seed: int = 0, **kwargs) -> TensorBatch:
    return TensorBatch.from_minibatch(make_minibatch(seed, **kwargs))


def hinge_loss(model, batch):
    """The max-margin loss (Δ 0.5) of `model` on `batch`: what the gradient tests step on."""
    from gpu_consumer.loss import max_margin_loss
    return max_margin_loss(model(batch), batch.queries, batch.positives, batch.easy_negatives,
                           batch.hard_negatives, margin=0.5).loss
