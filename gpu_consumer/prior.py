"""The candidate prior: one scalar per item beside its unit vector.

Unit-sphere cosines cannot say "this item is popular", and on held-out edges
popularity is most of what they miss (docs/quality.md).  With
trainer.candidate_prior on, the model exports each item as

    v = [z ‖ β]        z unit norm (embedding_dim), β a scalar in cosine units

and a query is the same row with its last entry set to 1, so one inner
product gives the cosine plus the candidate's prior:

    as_queries(v_q) · v_c = z_q·z_c + β_c

Every scorer (validation, the FAISS index, evaluation, and the loss unless
β is a fixed degree prior, below) scores this way, so one inner-product
index serves what training optimised.  Without the prior a vector is z
alone and the helpers below are not needed (`queries_for` handles both).  Works on numpy arrays and torch tensors alike; torch is only
imported when a tensor is passed.

β comes from one of two sources (trainer.prior_source):

- 'learned': β = b·h + c of the head's input, b and c zero at the start;
- 'degree':  β = s·log(1 + degree), fixed, from the store (`degree_prior`).
  A sampled softmax at temperature τ over negatives drawn with probability
  ∝ degree^e is optimal when its logits (score/τ) hold log p(c | q) − log q(c);
  for the popularity part of p that is (1 − e)·log degree, so
  s = τ·(1 − e): τ for uniform negatives, τ/4 for degree^0.75 ones
  (`degree_scale`).  By default (trainer.prior_in_loss off) the training
  loss scores cosines alone and β joins where the vectors are served: that
  scored higher on all four held-out-edge graphs than training on
  z·z + β, and far higher than the learned β, whose β and z share the
  head's input (on synth-50k the cosines collapsed onto one direction, mean
  cosine 0.96, while β did the ranking); docs/quality.md, "Found
  (session 6)".  How much of the popularity the cosines have already
  absorbed depends on the graph, so with trainer.calibrate_prior the
  session scales the table by the factor its held-out pairs rank best
  under (TrainingSession.calibrate_prior; docs/quality.md, session 16).
"""

from __future__ import annotations

import numpy as np


def width(spec) -> int:
    """Columns of an exported vector for a model spec: embedding_dim, plus
    one for β when the prior is on.  Serving sizes its tables with this."""
    return int(spec.embedding_dim) + (1 if getattr(spec, "candidate_prior", False) else 0)


def in_loss(trainer_cfg) -> bool:
    """Whether the training loss scores with the β column: a learned β always
    (the loss is what trains it), a degree β only with trainer.prior_in_loss."""
    if not trainer_cfg.candidate_prior:
        return False
    return str(trainer_cfg.prior_source) == "learned" or bool(trainer_cfg.prior_in_loss)


def degree_scale(temperature: float, negative_distribution: str) -> float:
    """s of β = s·log(1 + degree): the popularity a sampled softmax at
    `temperature` would put in the scores, less what the negatives' own
    sampling (uniform, or ∝ degree^0.75) already accounts for."""
    exponent = 0.75 if str(negative_distribution) == "degree" else 0.0
    return float(temperature) * (1.0 - exponent)


def item_degrees(store, item_type: str) -> np.ndarray:
    """int64 [items]: each item's edges over every edge type that touches its
    type (both directions of an item-item type)."""
    n = store.node_types[item_type]
    degree = np.zeros(n, np.int64)
    for name, e in store.edge_types.items():
        for reverse, rows in ((False, e.src_type), (True, e.dst_type)):
            if rows == item_type:
                degree += np.diff(np.asarray(store.csr(name, reverse=reverse).indptr))
    return degree


def degree_prior(store, item_type: str, scale: float) -> np.ndarray:
    """float32 [items]: β = scale·log(1 + degree) of every item."""
    return (scale * np.log1p(item_degrees(store, item_type))).astype(np.float32)


def _is_torch(v) -> bool:
    return type(v).__module__.startswith("torch")


def as_queries(v):
    """A copy of the candidate vectors [z ‖ β] with β replaced by 1.0, so that
    as_queries(v_q) · v_c adds the candidate's β to the cosine.  The input is
    left untouched (it is often a memmap or a tensor that autograd needs)."""
    if _is_torch(v):
        import torch
        return torch.cat([v[..., :-1], torch.ones_like(v[..., -1:])], dim=-1)
    q = np.array(v, copy=True)
    q[..., -1] = 1.0
    return q


def unit_part(v):
    """z alone (the last column dropped): for cosine-only use of a prior export."""
    return v[..., :-1]


def prior_part(v):
    """β alone, [n]."""
    return v[..., -1]


def queries_for(v, prior: bool):
    """The query form of vectors: as_queries(v) with a prior, v itself without."""
    return as_queries(v) if prior else v
