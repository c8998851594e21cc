"""Tickets -> minibatches: the sampler's steps chained for one training step.

    builder = BatchBuilder(store, config.sampler, model="pinsage")
    batch = builder.build(ticket)         # same ticket -> identical arrays

For a ticket: its pairs (a slice of the epoch's seeded order), easy
negatives shared by the batch, the ticket's number of hard negatives per query,
then the computation graph over all of them (query<->positive links banned from
both neighbourhoods), then input features gathered from the store's memmap.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from common.errors import ConfigError
from common.schema import to_dict
from graphstore.store import Store
from sampler import compgraph, negatives, paging, pairs
from sampler.config import ModelKind, SamplerConfig
from sampler.graph import WalkGraph
from sampler.neighbourhoods import multisage_neighbourhoods, pinsage_neighbourhoods
from sampler.rng import seed64
from sampler.records import ComputationGraph, Neighbourhoods
from worker.batch import MiniBatch
from worker.ticket import Ticket

# Bump when the batch layout or the sampling semantics change: it is part of
# the digest, so producers and trainer with different builders refuse each other.
BUILDER_VERSION = 2
_MODELS = ModelKind.values()


class BatchBuilder:
    def __init__(self, store: Store, sampler_cfg: SamplerConfig, *,
                 model: ModelKind | str = ModelKind.PINSAGE):
        if model not in _MODELS:
            raise ConfigError(f"trainer.model: expected one of {', '.join(_MODELS)}, "
                              f"got {model!r}")
        self.store, self.cfg, self.model = store, sampler_cfg, model
        self.graph = paging.prepare(WalkGraph.from_store(store, sampler_cfg.item_type,
                                                         dict(sampler_cfg.context_weights)),
                                    sampler_cfg.paged_walks, sampler_cfg.resident_bytes)
        self._pairs: pairs.TrainingPairs | None = None
        self._degrees = None
        self._easy_rates = None
        self._order_cache: tuple[int, pairs.EpochOrder] | None = None

    @property
    def pairs(self) -> pairs.TrainingPairs:
        """The training and validation pairs, made on first use (inference and
        serving never need them)."""
        if self._pairs is None:
            self._pairs = self._training_pairs()
        return self._pairs

    # -- the contract --------------------------------------------------------
    @property
    def digest(self) -> str:
        text = json.dumps({"store": self.store.digest, "sampler": to_dict(self.cfg),
                           "model": self.model, "builder": BUILDER_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def num_batches(self, epoch: int) -> int:
        return self.pairs.num_batches(self.cfg.batch_size)

    def validation_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        return (self.pairs.val_queries.astype(np.int64),
                self.pairs.val_positives.astype(np.int64))

    def build(self, ticket: Ticket) -> MiniBatch:
        # One fstat per mapped file: a store file truncated under this process
        # becomes a StoreError naming it here, not a SIGBUS mid-kernel.
        self.store.check_files()
        q, p = self._batch_pairs(ticket)
        rng = np.random.default_rng([seed64(ticket.seed), 0xEA5E])
        easy = negatives.easy_negatives(self.graph.num_items, self.cfg.easy_negatives, rng,
                                        self.cfg.negative_distribution, self._item_degrees())
        hard, logq = self._hard_negatives(q, p, easy, ticket)
        targets, (qi, pi, ei, hi) = _dedupe(q, p, easy, hard.reshape(-1))
        graph = compgraph.build(targets, self.cfg.num_layers, self._sampler(ticket.seed),
                                _pair_bans(targets, qi, pi), self._context_count())
        return self._finish(ticket, graph, qi, pi, ei, hi.reshape(hard.shape), logq)

    def inference_batch(self, nodes: np.ndarray) -> MiniBatch:
        """Computation graph + features for arbitrary distinct targets, with the
        inference seed (so a node's neighbourhood is the same in every batch)."""
        self.store.check_files()
        nodes = np.asarray(nodes, np.int64).reshape(-1)
        if np.unique(nodes).shape[0] != nodes.shape[0]:
            raise ValueError("inference_batch: nodes must be distinct item ids")
        seed = self.inference_seed
        graph = compgraph.build(nodes, self.cfg.num_layers, self._sampler(seed), None,
                                self._context_count())
        n = nodes.shape[0]
        empty = np.empty(0, np.int32)
        return self._finish(Ticket(-1, 0, seed, 0), graph, np.arange(n, dtype=np.int32),
                            empty, empty, np.empty((n, 0), np.int32))

    # -- also used by serving --------------------------------------------------
    @property
    def inference_seed(self) -> int:
        return int(np.random.SeedSequence([self.cfg.seed, 0x1AFE]).generate_state(1)[0])

    def neighbourhoods(self, nodes: np.ndarray, seed: int | None = None) -> Neighbourhoods:
        """The neighbourhoods inference_batch uses (seed: inference_seed)."""
        nodes = np.asarray(nodes, np.int64).reshape(-1)
        none = np.zeros(nodes.shape[0] + 1, np.int64), np.empty(0, np.int64)
        return self._sampler(self.inference_seed if seed is None else seed)(nodes, *none)

    # -- steps ---------------------------------------------------------------
    def _training_pairs(self) -> pairs.TrainingPairs:
        source = self.cfg.positives
        if source == "cooccurrence":
            q, p = pairs.cooccurrence_pairs(self.graph, self.cfg.pairs_per_item, self.cfg.seed)
        elif source == "walks":
            q, p = pairs.walk_pairs(self.graph, self.cfg.pairs_per_item,
                                    self.cfg.positive_restart_prob, self.cfg.positive_max_steps,
                                    self.cfg.seed)
        else:
            q, p = pairs.read_pair_file(Path(source), self.store.ids(self.cfg.item_type))
        split = pairs.split(q, p, self.cfg.validation_fraction, self.cfg.seed)
        if len(split) == 0:
            raise ConfigError(f"sampler.positives: no training pairs from {source!r} (after "
                              f"holding out {self.cfg.validation_fraction:.0%} for validation); "
                              "the graph or pair file has no two related items")
        return split

    def _batch_pairs(self, ticket: Ticket):
        n = len(self.pairs)
        if self._order_cache is None or self._order_cache[0] != ticket.epoch:
            self._order_cache = (ticket.epoch, pairs.EpochOrder(n, self.cfg.seed, ticket.epoch))
        total = self.num_batches(ticket.epoch)
        if not 0 <= ticket.batch < total:
            raise ValueError(f"ticket {ticket}: batch {ticket.batch} does not exist; epoch "
                             f"{ticket.epoch} has {total} batches of {self.cfg.batch_size}")
        b = self.cfg.batch_size
        order = self._order_cache[1].take(ticket.batch * b, (ticket.batch + 1) * b)
        return self.pairs.take(order)

    def _hard_negatives(self, q, p, easy, ticket: Ticket):
        """[B, h] hard negatives, and the log-proposal correction of every
        negative ([B, N + h], or [B, 0] where there is none to make)."""
        c, count, b = self.cfg, max(0, ticket.hard_negatives), len(q)
        if count == 0 or b == 0:
            return np.empty((b, count), np.int64), np.empty((b, 0), np.float16)
        seed = ticket.seed ^ 0x7A3D
        windows = negatives.hard_negative_windows(
            self.graph, q, p, rank=tuple(c.hard_negative_rank),
            full_catalogue=c.hard_negative_full_catalogue, num_walks=c.hard_negative_walks,
            walk_length=c.hard_negative_walk_length,
            restart_prob=c.hard_negative_restart_prob, seed=seed)
        hard = negatives.draw_hard_negatives(windows, q, p, count, self.graph.num_items, seed)
        if not c.hard_negative_correction:
            return hard, np.empty((b, 0), np.float16)
        if self._easy_rates is None:
            self._easy_rates = negatives.easy_rates(self.graph.num_items, c.easy_negatives,
                                                    c.negative_distribution,
                                                    self._item_degrees())
        logq = negatives.logq_correction(windows, hard, self.graph.num_items, easy,
                                         self._easy_rates)
        return hard, logq.astype(np.float16)

    def _sampler(self, seed: int):
        c = self.cfg
        if self.model == ModelKind.MULTISAGE:
            def sample(nodes, ptr, items):
                return multisage_neighbourhoods(
                    self.graph, nodes, num_walks=c.multisage_num_walks or c.num_walks,
                    walk_length=c.multisage_walk_length or c.walk_length,
                    restart_prob=c.multisage_restart_prob, top_k=c.multisage_num_neighbors,
                    seed=seed, exclude_csr=(ptr, items))
        else:
            def sample(nodes, ptr, items):
                return pinsage_neighbourhoods(
                    self.graph, nodes, num_walks=c.num_walks, walk_length=c.walk_length,
                    restart_prob=c.restart_prob, top_k=c.num_neighbors, seed=seed,
                    exclude_csr=(ptr, items))
        return sample

    def _context_count(self) -> int:
        return len(self.graph.context_types) if self.model == ModelKind.MULTISAGE else 0

    def _item_degrees(self):
        if self.cfg.negative_distribution != "degree":
            return None
        if self._degrees is None:
            self._degrees = self.graph.degrees()
        return self._degrees

    def _finish(self, ticket, graph: ComputationGraph, qi, pi, ei, hi,
                logq: np.ndarray | None = None) -> MiniBatch:
        features = _gather(self.store.features(self.cfg.item_type), graph.input_nodes)
        ctx_feats = ()
        if graph.context_ids is not None:
            ctx_feats = tuple(_gather(self.store.features(name),
                                      graph.context_ids[graph.context_types == t])
                              for t, name in enumerate(self.graph.context_types))
        if logq is None:
            logq = np.empty((qi.shape[0], 0), np.float16)
        return MiniBatch(ticket, graph, features, qi.astype(np.int32), pi.astype(np.int32),
                         ei.astype(np.int32), hi.astype(np.int32), ctx_feats, logq)


def _dedupe(*groups):
    """Distinct targets in first-appearance order, and each group's positions."""
    flat = np.concatenate([np.asarray(g, np.int64) for g in groups])
    uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.shape[0])
    positions = rank[inverse.reshape(-1)]
    out, start = [], 0
    for g in groups:
        out.append(positions[start:start + len(g)])
        start += len(g)
    return uniq[order], out


def _pair_bans(targets, qi, pi):
    """Ban CSR over targets: each query bans its positives and vice versa."""
    src = np.concatenate([qi, pi])
    dst = targets[np.concatenate([pi, qi])]
    order = np.argsort(src, kind="stable")
    ptr = np.zeros(targets.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=targets.shape[0]), out=ptr[1:])
    return ptr, dst[order]


def _gather(features, nodes: np.ndarray) -> np.ndarray:
    """Rows of a (memmapped) feature array; sorted reads touch each page once.
    No features for this type: a [n, 0] float32 array (the model then uses ids)."""
    if features is None:
        return np.zeros((nodes.shape[0], 0), np.float32)
    order = np.argsort(nodes, kind="stable")
    out = np.empty((nodes.shape[0], features.shape[1]), features.dtype)
    out[order] = features[nodes[order]]
    return out
