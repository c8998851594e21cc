"""MultiSage contextual queries: "more like this, in context C".

The candidates are the items linked to the context node C (its subspace: a
board's pins, a user's movies, a venue's papers) plus the query.  For them
the last convolution is run again with every ego and neighbour seen through
C (MultiSage's contextual masking, `ego_context`), reading the layer K-1
table `sagewalk embed` left behind, so nothing below the last layer is
recomputed; then the dense head, then a dot-product ranking (with the
candidate prior, the query as [z ‖ 1]: z_q·z_c + β_c).  This is what
`MultiSage.embed_in_context` computes on a minibatch, done layer-wise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gpu_consumer.prior import queries_for
from graphstore.errors import UnknownIdError
from serving.index import ItemIndexError, Related, RelatedItems, UnknownItem
from serving.layerwise import layer_inputs


class ContextualRanker:
    def __init__(self, model, store, job_dir: Path, related: RelatedItems,
                 context_type: str | None = None):
        if getattr(model.spec, "model", None) != "multisage":
            raise ItemIndexError("contextual queries need a MultiSage model (trainer.model = "
                              f"'multisage'); this run has {model.spec.model!r}")
        self.model, self.store, self.index = model, store, related
        types = list(model.context_types)
        if context_type is None:
            if len(types) != 1:
                raise ItemIndexError(f"the model has context types {', '.join(types)}; name one "
                                  "with --context-type")
            context_type = types[0]
        if context_type not in types:
            raise ItemIndexError(f"context type {context_type!r} is not one of the model's "
                              f"context types ({', '.join(types)})")
        self.context_type = context_type
        self.item_type = model.spec.item_type
        self.prior = bool(getattr(model.spec, "candidate_prior", False))
        self.edge = _edge_between(store, self.item_type, context_type)
        job_dir = Path(job_dir)
        L = model.num_layers
        self.h_prev = np.load(job_dir / f"h{L - 1}.npy", mmap_mode="r")
        self.neighbors = np.load(job_dir / "neighbors.npy", mmap_mode="r")
        self.weights = np.load(job_dir / "weights.npy", mmap_mode="r")
        self.item_ids = store.ids(self.item_type)

    def context_vector(self, context_id: str) -> tuple[int, torch.Tensor]:
        try:
            dense = int(self.store.ids(self.context_type).to_dense([context_id])[0])
        except UnknownIdError as err:   # only an unknown id: any other failure is its own
            raise UnknownItem(f"unknown {self.context_type} id {context_id!r}: {err}") from err
        feats = self.store.features(self.context_type)
        f = None if feats is None else torch.from_numpy(np.array(feats[[dense]], np.float32))
        t = self.model.context_types.index(self.context_type)
        return dense, self.model.context_vectors(t, f, torch.tensor([dense]))[0]

    def candidates(self, context_dense: int) -> np.ndarray:
        name, reverse = self.edge
        csr = self.store.csr(name, reverse=reverse)
        return np.asarray(csr.indices[csr.indptr[context_dense]:csr.indptr[context_dense + 1]],
                          np.int64)

    def embed(self, items: np.ndarray, context: torch.Tensor) -> torch.Tensor:
        h_self, h_nbrs, w = layer_inputs(self.h_prev, self.neighbors, self.weights, items)
        ego = context.expand(len(items), -1)
        h = self.model.convolve(self.model.num_layers - 1, h_self, h_nbrs, w, None, ego)
        return self.model.finalize(h, torch.from_numpy(np.asarray(items, np.int64)))

    def related(self, item_id: str, context_id: str, k: int = 10) -> list[Related]:
        """The k items of context `context_id` most related to `item_id` within it."""
        if k < 1:
            raise ItemIndexError(f"k must be >= 1, got {k}")
        self.index.lookup(item_id)          # unknown ids: the index's clear message
        query = int(self.item_ids.to_dense([item_id])[0])
        with torch.inference_mode():
            ctx_dense, vector = self.context_vector(context_id)
            pool = np.setdiff1d(self.candidates(ctx_dense), [query])
            if len(pool) == 0:
                return []
            z = self.embed(np.concatenate([[query], pool]), vector)
            scores = (z[1:] @ queries_for(z[0], self.prior)).numpy()
        order = np.argsort(-scores, kind="stable")[:k]
        ext = self.item_ids.to_external(pool[order])
        return [Related(x, self._title(x), float(scores[i])) for x, i in zip(ext, order)]

    def _title(self, item_id: str) -> str | None:
        row = self.index.ids.get(item_id)
        return None if row is None else self.index.title(row)


def _edge_between(store, item_type: str, context_type: str) -> tuple[str, bool]:
    """(edge type, reverse?) whose rows are context nodes and indices items."""
    for name, et in store.edge_types.items():
        if et.src_type == context_type and et.dst_type == item_type:
            return name, False
        if et.src_type == item_type and et.dst_type == context_type:
            return name, True
    raise ItemIndexError(f"the store has no edge type between {item_type!r} and {context_type!r}")


def open_ranker(config, related: RelatedItems, run_dir: str | None, job_dir: str | None,
                context_type: str | None) -> ContextualRanker:
    from gpu_consumer.model import load_model
    from graphstore import open_store
    run_dir = run_dir or config.trainer.run_dir
    job_dir = job_dir or str(Path(run_dir) / "embed")
    if not (Path(job_dir) / "neighbors.npy").exists():
        raise ItemIndexError(f"{job_dir}: no `sagewalk embed` tables; run `sagewalk embed --run "
                          f"{run_dir}` first or pass --embed-dir")
    return ContextualRanker(load_model(run_dir), open_store(config.graphstore.path),
                            Path(job_dir), related, context_type)
