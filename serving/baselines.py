"""Scorers: given query items, a score for every candidate item.

A scorer is any callable `scores(queries int64[b]) -> float32[b, n_items]`; the
evaluation protocols rank by it.  The learnt model is one (dot product of
embeddings); the baselines below are the others the issue names, computed by
the same code so the comparison is fair:

- popularity: train degree, the same for every query;
- item-kNN co-occurrence: how many contexts (users) hold both the query and
  the candidate (cosine-normalised on request);
- random walk (Pixie-style): the exact probability of reaching each item in
  `hops` item->context->item steps from the query (one hop by default);
- features: cosine similarity of item feature vectors (genres, title embedding);
- pair counts: how often the candidate was engaged with right before or after
  the query (a pair file, e.g. MovieLens next-item pairs): the signal the model
  trains on, counted directly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

# torch flags its CSR tensors as beta on every construction; the products we use are stable.
warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant checks)")


@dataclass(frozen=True)
class Bipartite:
    """Items and their contexts (users) as two CSR matrices (int64 ids)."""
    num_items: int
    num_contexts: int
    item_indptr: np.ndarray   # item -> contexts
    item_indices: np.ndarray
    ctx_indptr: np.ndarray    # context -> items
    ctx_indices: np.ndarray

    @classmethod
    def from_pairs(cls, items: np.ndarray, contexts: np.ndarray, num_items: int,
                   num_contexts: int) -> "Bipartite":
        items = np.asarray(items, np.int64)
        contexts = np.asarray(contexts, np.int64)
        ip, ii = _csr(items, contexts, num_items)
        cp, ci = _csr(contexts, items, num_contexts)
        return cls(num_items, num_contexts, ip, ii, cp, ci)

    @classmethod
    def from_store(cls, store, edge_type: str) -> "Bipartite":
        fwd = store.csr(edge_type)
        rev = store.csr(edge_type, reverse=True)
        return cls(len(fwd.indptr) - 1, len(rev.indptr) - 1,
                   np.asarray(fwd.indptr, np.int64), np.asarray(fwd.indices, np.int64),
                   np.asarray(rev.indptr, np.int64), np.asarray(rev.indices, np.int64))

    def item_degrees(self) -> np.ndarray:
        return np.diff(self.item_indptr)

    def context_degrees(self) -> np.ndarray:
        return np.diff(self.ctx_indptr)

    def item_context_matrix(self, scale_rows: bool = False,
                            scale_cols: bool = False) -> torch.Tensor:
        """Sparse [items, contexts]; optionally divided by item / context degree."""
        vals = np.ones(len(self.item_indices), np.float32)
        if scale_rows:
            vals /= np.repeat(np.maximum(self.item_degrees(), 1), self.item_degrees())
        if scale_cols:
            vals /= np.maximum(self.context_degrees(), 1)[self.item_indices]
        return torch.sparse_csr_tensor(torch.from_numpy(self.item_indptr),
                                       torch.from_numpy(self.item_indices),
                                       torch.from_numpy(vals),
                                       size=(self.num_items, self.num_contexts))

    def context_item_matrix(self, by_item_degree: bool = False) -> torch.Tensor:
        """Sparse [contexts, items]; optionally divided by the item's degree."""
        vals = np.ones(len(self.ctx_indices), np.float32)
        if by_item_degree:
            vals /= np.maximum(self.item_degrees(), 1)[self.ctx_indices]
        return torch.sparse_csr_tensor(torch.from_numpy(self.ctx_indptr),
                                       torch.from_numpy(self.ctx_indices),
                                       torch.from_numpy(vals),
                                       size=(self.num_contexts, self.num_items))


def _csr(src: np.ndarray, dst: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst[order]


def _rows_dense(graph: Bipartite, queries: np.ndarray, weights: np.ndarray | None
                ) -> torch.Tensor:
    """[contexts, b] dense: the query items' context rows (optionally weighted)."""
    out = torch.zeros((graph.num_contexts, len(queries)))
    for col, q in enumerate(queries.tolist()):
        ctx = graph.item_indices[graph.item_indptr[q]:graph.item_indptr[q + 1]]
        w = 1.0 if weights is None else torch.from_numpy(weights[ctx])
        out[torch.from_numpy(ctx), col] = w
    return out


class Popularity:
    """Train degree: recommends the most interacted-with items to everyone."""

    def __init__(self, graph: Bipartite):
        self.degrees = graph.item_degrees().astype(np.float32)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.degrees, (len(queries), len(self.degrees)))


class ItemKNN:
    """Co-occurrence counts with the query item (optionally cosine-normalised)."""

    def __init__(self, graph: Bipartite, cosine: bool = True):
        self.graph = graph
        self.matrix = graph.item_context_matrix()
        deg = np.maximum(graph.item_degrees(), 1).astype(np.float32)
        self.norm = 1.0 / np.sqrt(deg) if cosine else None

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        counts = (self.matrix @ _rows_dense(self.graph, queries, None)).T.numpy()
        if self.norm is not None:
            counts = counts * self.norm[None, :] * self.norm[queries][:, None]
        return counts


class RandomWalk:
    """Exact visit probability after `hops` item->context->item steps (Pixie
    estimates these by sampling; on a catalogue this small we can afford the
    exact sparse products)."""

    def __init__(self, graph: Bipartite, hops: int = 1):
        self.graph = graph
        self.hops = hops
        self.to_ctx = graph.context_item_matrix(by_item_degree=True)  # P(ctx | item)^T
        self.to_item = graph.item_context_matrix(scale_cols=True)     # P(item | ctx)^T

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        p = torch.zeros((self.graph.num_items, len(queries)))
        p[torch.from_numpy(queries), torch.arange(len(queries))] = 1.0
        for _ in range(self.hops):
            p = self.to_item @ (self.to_ctx @ p)
        return p.T.numpy()


class PairCounts:
    """Symmetric counts of (query, positive) pairs: score(q, j) = #(q, j) + #(j, q)."""

    def __init__(self, queries: np.ndarray, positives: np.ndarray, num_items: int):
        graph = Bipartite.from_pairs(np.concatenate([queries, positives]),
                                     np.concatenate([positives, queries]),
                                     num_items, num_items)
        self.graph = graph
        self.matrix = graph.item_context_matrix()

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        # Row q of the (symmetric) count matrix, via a product with one-hot columns.
        onehot = torch.zeros((self.graph.num_items, len(queries)))
        onehot[torch.from_numpy(queries), torch.arange(len(queries))] = 1.0
        return (self.matrix @ onehot).T.numpy()


class FeatureSimilarity:
    """Cosine similarity of feature rows (genre one-hot, title embedding...)."""

    def __init__(self, features: np.ndarray):
        f = np.asarray(features, np.float32)
        norm = np.linalg.norm(f, axis=1, keepdims=True)
        self.features = f / np.maximum(norm, 1e-12)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        return self.features[queries] @ self.features.T


class Embeddings:
    """The learnt model: dot product of unit-sphere embeddings."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        return self.vectors[queries] @ self.vectors.T
