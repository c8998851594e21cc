"""Building blocks both models share: input encoding, pooling, dense heads.

Every layer takes and returns plain tensors so that serving can run the same
modules layer by layer over all nodes, outside any minibatch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from common.errors import SagewalkError
from gpu_consumer.config import Pooling

_NORM_EPS = 1e-6


class ModelError(SagewalkError):
    """A model cannot be built from the given store/config."""


def l2_normalise(x: torch.Tensor) -> torch.Tensor:
    """Rows onto the unit sphere; an all-zero row stays zero instead of NaN."""
    return F.normalize(x, p=2.0, dim=-1, eps=_NORM_EPS)


def hash_ids(node_ids: torch.Tensor, buckets: int) -> torch.Tensor:
    """Row of each dense id in a table of `buckets` rows: id mod buckets.
    Dense ids are 0..n-1, so this is collision-free whenever the table has at
    least n rows, and spreads a larger catalogue evenly (⌈n/buckets⌉ ids per
    row) otherwise; a random hash would collide even then."""
    return torch.remainder(node_ids.to(torch.int64), buckets)


def pooling_weights(weights: torch.Tensor, pooling: str) -> torch.Tensor:
    """Per-neighbour weights of γ.  'importance' uses the normalised visit
    counts as sent; 'uniform' gives every real neighbour (weight > 0) the same
    share; padding (weight 0) contributes nothing either way."""
    weights = weights.float()
    if pooling == "importance":
        return weights
    if pooling == "uniform":
        present = (weights > 0).float()
        return present / present.sum(dim=-1, keepdim=True).clamp_min(1.0)
    raise ModelError(f"trainer.pooling: unknown pooling {pooling!r}; "
                     f"expected {' or '.join(map(repr, Pooling.values()))}")


class InputEncoder(nn.Module):
    """h0 of a node: a linear projection of its stored features plus, when
    enabled, a learnable embedding looked up by hashed id.  A node type with no
    features works on id embeddings alone."""

    def __init__(self, feature_dim: int, out_dim: int, buckets: int, *, what: str = "item"):
        super().__init__()
        if feature_dim <= 0 and buckets <= 0:
            raise ModelError(
                f"node type {what!r} has no features and id embeddings are off: the model "
                "has no input; set trainer.id_embedding_buckets > 0 (e.g. 100000) or ingest "
                "features for it")
        self.feature_dim = int(feature_dim)
        self.buckets = int(buckets)
        self.project = nn.Linear(feature_dim, out_dim) if feature_dim > 0 else None
        self.ids = nn.Embedding(buckets, out_dim) if buckets > 0 else None
        if self.ids is not None:
            nn.init.normal_(self.ids.weight, std=out_dim ** -0.5)

    def forward(self, features: torch.Tensor | None, node_ids: torch.Tensor) -> torch.Tensor:
        out = None
        if self.project is not None:
            if features is None or features.shape[-1] != self.feature_dim:
                got = None if features is None else tuple(features.shape)
                raise ModelError(f"input features: expected [n, {self.feature_dim}], got {got}")
            # float16 on the wire; cast here, on the device, to the weights' dtype.
            out = self.project(features.to(self.project.weight.dtype))
        if self.ids is not None:
            looked_up = self.ids(hash_ids(node_ids, self.buckets))
            out = looked_up if out is None else out + looked_up
        return out


class DenseHead(nn.Module):
    """PinSage's final G1, G2: ReLU between dense layers, the last one linear
    without bias (z ← G2·ReLU(G1·z + g)), then onto the unit sphere.

    residual: z ← P·h + G2·ReLU(G1·h + g) with the last layer zero at the
    start, so the head begins as P (the identity when in_dim == out_dim, else
    a random linear map at the start, trained like the rest) and learns a
    correction, instead of squashing every input through the ReLU and the
    biases first (docs/quality.md).

    prior: also a scalar β = b·h + c of the head's input, returned as an
    extra last column [z ‖ β] (gpu_consumer/prior.py): the candidate prior a
    unit vector cannot express.  b and c start at zero, so training starts
    from the cosine-only scores.

    degree_items: instead of b·h + c, β is read from a fixed table of that
    many items (the `prior_table` buffer, s·log(1 + degree) filled from the
    store by build_model and saved with the weights; gpu_consumer/prior.py):
    forward then needs the items' ids."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, layers: int, *,
                 residual: bool = False, prior: bool = False, degree_items: int = 0):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=(i < layers - 1)) for i, (a, b) in enumerate(zip(dims, dims[1:])))
        self.residual = bool(residual)
        self.skip = None
        if self.residual:
            nn.init.zeros_(self.layers[-1].weight)
            if in_dim != out_dim:
                self.skip = nn.Linear(in_dim, out_dim, bias=False)
                nn.init.normal_(self.skip.weight, std=in_dim ** -0.5)
        # Created last, so the other weights draw the same initial values
        # whether the prior is on or off.
        self.prior = nn.Linear(in_dim, 1) if prior and not degree_items else None
        if self.prior is not None:
            nn.init.zeros_(self.prior.weight)
            nn.init.zeros_(self.prior.bias)
        self.has_prior = bool(prior)
        if prior and degree_items:
            self.register_buffer("prior_table", torch.zeros(int(degree_items)))
        else:
            self.prior_table = None

    def forward(self, h: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        x = h
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        if self.residual:
            x = x + (h if self.skip is None else self.skip(h))
        z = l2_normalise(x.float())
        if not self.has_prior:
            return z
        if self.prior is not None:
            return torch.cat([z, self.prior(h).float()], dim=-1)
        if ids is None or ids.shape[0] != h.shape[0]:
            raise ModelError(f"the degree prior needs the ids of the {h.shape[0]} items "
                             f"embedded, got {None if ids is None else tuple(ids.shape)}")
        beta = self.prior_table[ids.to(self.prior_table.device).long()]
        return torch.cat([z, beta[:, None].float()], dim=-1)


def gather_neighbours(h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[n, k] positions -> [n, k, d] vectors (padding points at row 0, weight 0)."""
    n, k = index.shape
    return h.index_select(0, index.reshape(-1)).reshape(n, k, h.shape[-1])
