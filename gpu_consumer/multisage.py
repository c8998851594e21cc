"""MultiSage (Yang et al., KDD 2020): contextual masking and attention.

Each neighbour u of an ego v arrives with its dominant context node c (the
board, user, venue... through which the walks connected them).  Per layer:

    z_v, z_u  = T(h_v), T(h_u)                  target encoder (stacked dense)
    z_c       = C_type(c)                       one context encoder per context type
    z_{u|c}   = z_u ⊗ z_c                       contextual masking (ablations:
                                                z_u + z_c, or W·[z_u ‖ z_c])
    e_j       = LeakyReLU(a_hᵀ[W_h z_v ‖ W_h z_c ‖ W_h z_{u|c}])     (Eq. 6)
    α_j       = softmax_j(e_j + log w_j)        attention over (ego, context,
                                                neighbour) triplets, biased by the
                                                importance weights w        (Eq. 7)
    z_N(v)    = ‖_h Σ_j α_j W_h z_{u_j|c_j}     heads concatenated
    h_v       = (z_v + z_N(v)) / ‖·‖

That is trainer.convolution = 'paper'; the default 'residual' form keeps the
id path linear as in PinSage's (MultiSageConv's docstring).

A context encoder ends in a ReLU, so a context's mask has exact zeros: those
dimensions of every neighbour seen through that context are switched off.
`forward(batch, context=...)` returns the targets' embeddings seen through one
given context node (contextual retrieval).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gpu_consumer.config import Convolution
from gpu_consumer.layers import (DenseHead, InputEncoder, ModelError, gather_neighbours,
                                 l2_normalise, pooling_weights)

_DEFAULT_CONTEXT_BUCKETS = 4096
_NEG = -1e9  # logit of padding; finite so a neighbour-less row gives no NaN


class ContextEncoder(nn.Module):
    """Context node -> non-negative mask/translation vector,
    ReLU(offset + dense(ReLU(encoder(c)))).  offset 1 with `dense` zero at the
    start: every mask starts at 1 (no dimension switched off) and keeps a
    gradient, where random weights would start each context with a random
    half of the dimensions off."""

    def __init__(self, feature_dim: int, hidden_dim: int, buckets: int, name: str,
                 offset: float = 0.0):
        super().__init__()
        # A featureless context type (users, boards without text) still needs
        # distinct masks per node: give it a hashed id table of its own.
        buckets = buckets or (0 if feature_dim > 0 else _DEFAULT_CONTEXT_BUCKETS)
        self.encoder = InputEncoder(feature_dim, hidden_dim, buckets, what=name)
        self.dense = nn.Linear(hidden_dim, hidden_dim)
        self.offset = float(offset)
        if self.offset:
            nn.init.zeros_(self.dense.weight)
            nn.init.zeros_(self.dense.bias)

    def forward(self, features: torch.Tensor | None, ids: torch.Tensor) -> torch.Tensor:
        return F.relu(self.offset + self.dense(F.relu(self.encoder(features, ids))))


class MultiSageConv(nn.Module):
    """form 'paper': the layer above.  form 'residual' (the default, as
    PinSage's): T(h) = h + T'(h) with T' = Linear, ReLU, Linear whose last
    layer is zero at the start, W the identity at the start, and the output
    z_v + z_N(v) left unnormalised (the head normalises once), so the layer
    starts as attention-weighted propagation of the (masked) input vectors."""

    def __init__(self, dim: int, heads: int, combine: str, pooling: str,
                 form: str = Convolution.RESIDUAL, start: str = "random"):
        super().__init__()
        if dim % heads:
            raise ModelError(f"trainer.attention_heads: {heads} does not divide "
                             f"trainer.hidden_dim {dim}; pick a divisor")
        if str(form) not in Convolution.values():
            raise ModelError(f"trainer.convolution: unknown form {form!r}; expected "
                             f"{' or '.join(map(repr, Convolution.values()))}")
        self.heads, self.combine, self.pooling = heads, combine, pooling
        self.residual = str(form) == Convolution.RESIDUAL
        if self.residual:
            self.target = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
            nn.init.zeros_(self.target[-1].weight)
            nn.init.zeros_(self.target[-1].bias)
        else:
            self.target = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim),
                                        nn.ReLU())
        self.join = nn.Linear(2 * dim, dim) if combine == "concat" else None
        self.W = nn.Linear(dim, dim, bias=False)
        if self.residual:
            nn.init.eye_(self.W.weight)
        self.a = nn.Parameter(torch.randn(heads, 3, dim // heads) * (dim // heads) ** -0.5)
        if start == "identity":    # equal logits: α starts as the importance weights
            nn.init.zeros_(self.a)

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.target(h) if self.residual else self.target(h)

    def contextualise(self, z: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        if self.combine == "mask":
            return z * ctx
        if self.combine == "translation":
            return z + ctx
        return F.relu(self.join(torch.cat([z, ctx.to(z.dtype)], dim=-1)))

    def forward(self, h_self, h_nbrs, weights, contexts, ego_context=None):
        """Layer-wise form: h_self [n,d], h_nbrs [n,k,d] neighbours' vectors already
        gathered, weights [n,k], contexts [n,k,d] context vectors of each (ego,
        neighbour) pair; ego_context [n,d] views the ego and all its neighbours
        through one given context instead."""
        return self.attend(self.encode(h_self), self.encode(h_nbrs), weights, contexts,
                           ego_context)

    def forward_block(self, h, index, weights, context_table, context_index, num_dst: int,
                      ego_context=None):
        """Minibatch form, same result: T depends on the node alone, so it runs
        once per source node h [n_src, d] and the encoded rows are gathered by
        index [n, k] (a node is a neighbour of ~k egos); likewise a context's
        logit term once per row of context_table [c, d], which context_index
        [n, k] (its rows, padding already mapped to a zero row) gathers."""
        z = self.encode(h)
        contexts = gather_neighbours(context_table, context_index)
        projections = self._projections()
        logits = None
        if ego_context is None:
            logits = gather_neighbours(context_table.to(z.dtype) @ projections[1][1],
                                       context_index)
        return self.attend(z[:num_dst], gather_neighbours(z, index), weights, contexts,
                           ego_context, logits, projections)

    def _projections(self):
        """W's rows per head [H, d/H, d], and W_hᵀ a_h for each of Eq. 6's three
        terms (ego, context, masked neighbour) [3, d, H]."""
        d = self.W.weight.shape[1]
        rows = self.W.weight.reshape(self.heads, d // self.heads, d)
        return rows, torch.einsum("hed,hte->tdh", rows, self.a)

    def attend(self, z_v, z_u, weights, contexts, ego_context=None, context_logits=None,
               projections=None):
        """Eqs. 6-7 over encoded egos z_v [n,d] and neighbours z_u [n,k,d];
        context_logits [n,k,H], the context term of Eq. 6, and projections
        (`_projections()`), where the caller has them already.

        With W_h the rows of W that make head h, a_hᵀ W_h x = x · (W_hᵀ a_h), so
        each logit term is one [.., d] x [d, H] product, and Σ_j α_hj W_h z_j =
        W_h Σ_j α_hj z_j, so W runs once per ego and head, never per (ego,
        neighbour) pair: per pair there is a mask, a logit and a weighted sum."""
        n, k, d = z_u.shape
        if ego_context is not None:
            contexts, context_logits = ego_context.unsqueeze(1).expand(n, k, d), None
            z_v = self.contextualise(z_v, ego_context)
        contexts = contexts.to(z_u.dtype)
        z_uc = self.contextualise(z_u, contexts)
        rows, proj = self._projections() if projections is None else projections
        if context_logits is None:
            context_logits = contexts @ proj[1]
        logits = (z_v @ proj[0]).unsqueeze(1) + context_logits + z_uc @ proj[2]   # [n, k, H]
        logits = F.leaky_relu(logits.float(), 0.2)
        w = pooling_weights(weights, self.pooling)
        valid = (w > 0).unsqueeze(-1)
        logits = logits + torch.log(w.clamp_min(1e-12)).unsqueeze(-1)
        alpha = torch.softmax(logits.masked_fill(~valid, _NEG), dim=1) * valid
        pooled = torch.einsum("nkh,nkd->nhd", alpha.to(z_uc.dtype), z_uc)  # [n, H, d]
        z_n = torch.einsum("nhd,hed->nhe", pooled, rows.to(pooled.dtype)).reshape(n, d)
        return z_v + z_n if self.residual else l2_normalise(z_v + z_n)


class MultiSage(nn.Module):
    def __init__(self, *, feature_dim: int, hidden_dim: int, embedding_dim: int,
                 num_layers: int, context_dims: dict[str, int], id_embedding_buckets: int = 0,
                 pooling: str = "importance", dense_layers: int = 2, attention_heads: int = 4,
                 context_combine: str = "mask", context_start: str = "identity",
                 item_type: str = "item",
                 candidate_prior: bool = False, prior_items: int = 0,
                 convolution: str = Convolution.RESIDUAL):
        super().__init__()
        if not context_dims:
            raise ModelError("MultiSage needs at least one context node type; the store has "
                             "none besides the item type (use trainer.model='pinsage')")
        self.num_layers = int(num_layers)
        self.hidden_dim = int(hidden_dim)
        self.context_types = list(context_dims)
        self.encoder = InputEncoder(feature_dim, hidden_dim, id_embedding_buckets, what=item_type)
        if context_start not in ("identity", "random"):
            raise ModelError(f"trainer.context_start: unknown start {context_start!r}; "
                             "expected 'identity' or 'random'")
        # 'identity': a mask of ones (combine 'mask'; the other combines keep
        # their random start) and attention at the importance weights.
        offset = 1.0 if context_start == "identity" and context_combine == "mask" else 0.0
        self.context_encoders = nn.ModuleList(
            ContextEncoder(dim, hidden_dim, id_embedding_buckets, name, offset)
            for name, dim in context_dims.items())
        self.convs = nn.ModuleList(MultiSageConv(hidden_dim, attention_heads, context_combine,
                                                 pooling, convolution, context_start)
                                   for _ in range(num_layers))
        self.head = DenseHead(hidden_dim, hidden_dim, embedding_dim, dense_layers,
                              residual=str(convolution) == Convolution.RESIDUAL,
                              prior=candidate_prior, degree_items=prior_items)

    # -- layer-wise API (serving) -------------------------------------------
    def input_vectors(self, features, node_ids):
        return self.encoder(features, node_ids)

    def context_vectors(self, context_type: int, features, ids) -> torch.Tensor:
        """z_c of context nodes of one type (index into `context_types`)."""
        return self.context_encoders[context_type](features, ids)

    def context_index(self, name: str) -> int:
        """Type id of a context node type (as numbered in batches), by name."""
        if name not in self.context_types:
            raise ModelError(f"context type {name!r}: the model knows "
                             f"{', '.join(self.context_types)}")
        return self.context_types.index(name)

    def embed_in_context(self, batch, context_type: str, context_id: int,
                         context_features: torch.Tensor | None = None) -> torch.Tensor:
        """Targets' embeddings seen through one context node (contextual
        retrieval: rank items in that context's subspace).  `context_features`
        [d_c] are the node's stored features (None for a featureless type)."""
        device = batch.node_sets[0].device
        feats = None if context_features is None else context_features.reshape(1, -1).to(device)
        ids = torch.tensor([int(context_id)], device=device)
        vector = self.context_vectors(self.context_index(context_type), feats, ids)[0]
        return self.forward(batch, context=vector)

    def convolve(self, layer, h_self, h_nbrs, weights, contexts=None, ego_context=None):
        if contexts is None:  # no context known: every neighbour seen unmasked
            contexts = torch.ones_like(h_nbrs) if self.convs[layer].combine == "mask" \
                else torch.zeros_like(h_nbrs)
        return self.convs[layer](h_self, h_nbrs, weights, contexts, ego_context)

    def finalize(self, h, ids=None):
        """The head: [z] or [z ‖ β]; `ids` (the items' dense ids) for a degree prior."""
        return self.head(h, ids)

    # -- minibatches ---------------------------------------------------------
    def batch_contexts(self, batch) -> torch.Tensor:
        """z_c for every context node of the batch, [c + 1, d]; the last row is
        the zero vector that padding (-1) indexes."""
        ids = batch.context_ids
        num = 0 if ids is None else int(ids.shape[0])
        device = batch.node_sets[0].device
        out = torch.zeros(num + 1, self.hidden_dim, device=device)
        for t, encoder in enumerate(self.context_encoders):
            if num == 0:
                break
            rows = (batch.context_types == t).nonzero().squeeze(1)
            if rows.numel():
                feats = batch.context_features[t] if t < len(batch.context_features) else None
                feats = feats if feats is not None and feats.shape[-1] else None
                out = out.index_put((rows,), encoder(feats, ids[rows]).to(out.dtype))
        return out

    def forward(self, batch, context: torch.Tensor | None = None) -> torch.Tensor:
        """Targets' embeddings; with `context` ([d] or [n_targets, d] context
        vectors from `context_vectors`) the last layer sees every target through it."""
        if batch.context_ids is None or any(c is None for c in batch.ctx_index):
            raise ModelError("MultiSage got a batch without context nodes; the sampler must "
                             "build batches for model='multisage' (same trainer.model on "
                             "both sides)")
        ctx = self.batch_contexts(batch)
        h = self.input_vectors(batch.features, batch.node_sets[0])
        for k in range(self.num_layers):
            index = batch.ctx_index[k]
            rows = torch.where(index < 0, ctx.shape[0] - 1, index)
            ego = None
            if context is not None and k == self.num_layers - 1:
                ego = context.expand(batch.num_dst[k], -1) if context.dim() == 1 else context
            h = self.convs[k].forward_block(h, batch.nbr_index[k], batch.nbr_weight[k], ctx,
                                            rows, batch.num_dst[k], ego)
        return self.finalize(h, batch.node_sets[-1])
