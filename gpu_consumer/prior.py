"""The learned candidate prior: one scalar per item beside its unit vector.

Unit-sphere cosines cannot say "this item is popular", and on held-out edges
popularity is most of what they miss (docs/quality.md).  With
trainer.candidate_prior on, the model exports each item as

    v = [z ‖ β]        z unit norm (embedding_dim), β a scalar in cosine units

and a query is the same row with its last entry set to 1, so one inner
product gives the cosine plus the candidate's prior:

    as_queries(v_q) · v_c = z_q·z_c + β_c

Every scorer (the loss, validation, the FAISS index, evaluation) scores this
way, so one inner-product index serves what training optimised.  Without the
prior a vector is z alone and the helpers below are not needed (`scores`
handles both).  Works on numpy arrays and torch tensors alike; torch is only
imported when a tensor is passed.
"""

from __future__ import annotations

import numpy as np


def width(spec) -> int:
    """Columns of an exported vector for a model spec: embedding_dim, plus
    one for β when the prior is on.  Serving sizes its tables with this."""
    return int(spec.embedding_dim) + (1 if getattr(spec, "candidate_prior", False) else 0)


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
