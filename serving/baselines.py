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
  trains on, counted directly;
- personalised PageRank: the exact stationary distribution of the item->context
  ->item walk restarting at the query (power iteration, batched over queries);
- SVD: cosine of the items' rows in a truncated SVD of the degree-normalised
  item-context matrix.

`Bipartite.from_store_types` joins several item-context edge types of a
multipartite store into one item-context matrix (context ids offset per type),
so every scorer here works on MultiSage-style stores too.
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

    @classmethod
    def from_store_types(cls, store, item_type: str, edge_types: list[str]) -> "Bipartite":
        """Items and the contexts of several edge types touching `item_type` (either
        side), context ids offset by type in the order given.  Rows are sorted."""
        items, contexts, offset = [], [], 0
        for name in edge_types:
            i, c, n_ctx = item_context_edges(store, item_type, name)
            items.append(i)
            contexts.append(c + offset)
            offset += n_ctx
        num_items = store.node_types[item_type]
        items = np.concatenate(items) if items else np.zeros(0, np.int64)
        contexts = np.concatenate(contexts) if contexts else np.zeros(0, np.int64)
        # Sort by (item, context) so each item's row is sorted (intersections merge rows).
        order = np.lexsort((contexts, items))
        return cls.from_pairs(items[order], contexts[order], num_items, offset)

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


def item_context_edges(store, item_type: str, edge_type: str
                       ) -> tuple[np.ndarray, np.ndarray, int]:
    """(item ids, context ids, number of contexts) of one edge type with the item
    type on exactly one side, in the order of the item-side CSR."""
    et = store.edge_types[edge_type]
    if (et.src_type == item_type) == (et.dst_type == item_type):
        raise ValueError(f"edge type {edge_type!r} ({et.src_type} -> {et.dst_type}) does not "
                         f"link {item_type!r} to another node type")
    csr = store.csr(edge_type, reverse=et.dst_type == item_type)
    indptr = np.asarray(csr.indptr, np.int64)
    items = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    other = et.dst_type if et.src_type == item_type else et.src_type
    return items, np.asarray(csr.indices, np.int64), store.node_types[other]


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
    """The learnt model: dot product of unit-sphere embeddings, or with the
    candidate prior ([z ‖ β] vectors) z_q·z_c + β_c."""

    def __init__(self, vectors: np.ndarray, *, prior: bool = False):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.prior = bool(prior)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        from gpu_consumer.prior import queries_for
        return queries_for(self.vectors[queries], self.prior) @ self.vectors.T


class PersonalisedPageRank:
    """Exact personalised PageRank from the query over the item->context->item walk.

    One step from an item goes to one of its contexts uniformly (all context edge
    types pooled), then to one of that context's items uniformly; with probability
    `restart` the walk jumps back to the query.  The scores are the stationary
    distribution x = restart * e_q + (1 - restart) * W x, by power iteration over a
    batch of queries at once (two sparse-dense products per iteration) until the
    largest L1 change of any query's vector is below `tol`: the error left is then
    at most tol * (1 - restart) / restart in L1."""

    def __init__(self, graph: Bipartite, restart: float = 0.15, tol: float = 1e-6,
                 max_iter: int = 500, batch: int = 512):
        import scipy.sparse as sp
        if not 0 < restart < 1:
            raise ValueError(f"restart probability must be in (0, 1), got {restart}")
        self.graph, self.restart, self.tol = graph, restart, tol
        self.max_iter, self.batch = max_iter, batch
        inv_item = (1.0 / np.maximum(graph.item_degrees(), 1)).astype(np.float32)
        inv_ctx = (1.0 / np.maximum(graph.context_degrees(), 1)).astype(np.float32)
        shape = (graph.num_items, graph.num_contexts)
        a = sp.csr_matrix((np.ones(len(graph.item_indices), np.float32),
                           graph.item_indices, graph.item_indptr), shape=shape)
        # to_ctx[c, i] = P(c | i); to_item[i, c] = P(i | c): columns are distributions.
        self.to_ctx = sp.csr_matrix(a.multiply(inv_item[:, None]).T)
        self.to_item = sp.csr_matrix(a.multiply(inv_ctx[None, :]))
        self.iterations = 0       # of the last batch (reported by the evaluation)

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        queries = np.asarray(queries, np.int64)
        out = np.empty((len(queries), self.graph.num_items), np.float32)
        for start in range(0, len(queries), self.batch):
            q = queries[start:start + self.batch]
            out[start:start + len(q)] = self._batch(q).T
        return out

    def _batch(self, queries: np.ndarray) -> np.ndarray:
        seed = np.zeros((self.graph.num_items, len(queries)), np.float32)
        seed[queries, np.arange(len(queries))] = self.restart
        x = seed / self.restart
        for it in range(1, self.max_iter + 1):
            step = self.to_item @ (self.to_ctx @ x)
            new = seed + (1.0 - self.restart) * step
            change = float(np.abs(new - x).sum(axis=0).max())
            x = new
            if change < self.tol:
                break
        self.iterations = it
        return x


class SVDFactors:
    """Cosine of item rows U*S of a rank-`dim` truncated SVD of D_i^-1/2 A D_c^-1/2
    (A the item-context matrix): a low-rank smoothing of co-occurrence.  ARPACK
    with a start vector from `seed`, so the factors are reproducible."""

    def __init__(self, graph: Bipartite, dim: int = 64, seed: int = 0):
        import scipy.sparse as sp
        from scipy.sparse.linalg import svds
        deg_i = np.maximum(graph.item_degrees(), 1).astype(np.float64)
        deg_c = np.maximum(graph.context_degrees(), 1).astype(np.float64)
        vals = 1.0 / np.sqrt(np.repeat(deg_i, graph.item_degrees())
                             * deg_c[graph.item_indices])
        a = sp.csr_matrix((vals, graph.item_indices, graph.item_indptr),
                          shape=(graph.num_items, graph.num_contexts))
        k = max(1, min(dim, min(a.shape) - 1))
        v0 = np.random.default_rng(seed).random(min(a.shape))
        u, s, _ = svds(a, k=k, v0=v0, solver="arpack")
        vectors = (u * s[None, :]).astype(np.float32)
        norm = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = vectors / np.maximum(norm, 1e-12)
        self.dim = k

    def __call__(self, queries: np.ndarray) -> np.ndarray:
        return self.vectors[queries] @ self.vectors.T
