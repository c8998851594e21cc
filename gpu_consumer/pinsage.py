"""PinSage (Ying et al., KDD 2018, Algorithm 1), in two layer forms.

'paper', Algorithm 1 as printed; per layer, for a node u with neighbours N(u)
and importance weights α:

    n_v = ReLU(Q·h_v + q)                    neighbour vectors
    γ   = Σ_v α_v n_v                        importance pooling (uniform: mean)
    z_u = ReLU(W·[h_u ‖ γ] + w),  z_u ← z_u / ‖z_u‖

then G1, G2 dense layers and a final L2 normalisation.

'residual' (the default), the same pooling with the id path kept linear:

    γ   = Σ_v α_v h_v
    z_u = h_u + γ + W·[h_u ‖ γ] + w          W, w zero at the start

and a residual head z = P·h + G2·ReLU(G1·h + g) (P the identity when the
widths agree; G2 zero at the start), L2-normalised once, at the end.  On
id-only inputs the paper form maps every item to nearly one direction (mean
pairwise cosine 0.89 untrained, from the biases and ReLUs; training on
uniform negatives deepens it) and never recovers a planted community; the
residual form starts as importance-weighted propagation of the id vectors
(LightGCN's finding for id-based graphs) and learns its corrections from
there (docs/quality.md, "Found (session 5)").

The layer-wise API (`input_vectors`, `convolve`, `finalize`) runs the same
layers and weights as `forward`: `forward` calls each layer's
`forward_block` (neighbours indexed in the batch, summed by an
embedding_bag), `convolve` the layer itself (neighbours' vectors already
gathered from serving's tables), and the two forms give the same result
(tests/gpu_consumer/test_pinsage.py), so serving's all-node inference
computes what training optimised.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gpu_consumer.config import Convolution
from gpu_consumer.layers import DenseHead, InputEncoder, ModelError, l2_normalise, pooling_weights


class PinSageConv(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, pooling: str,
                 form: str = Convolution.RESIDUAL):
        super().__init__()
        self.pooling = pooling
        self.form = str(form)
        if self.form == Convolution.PAPER:
            self.Q = nn.Linear(in_dim, out_dim)
            self.W = nn.Linear(in_dim + out_dim, out_dim)
        elif self.form == Convolution.RESIDUAL:
            if in_dim != out_dim:
                raise ModelError(f"residual convolution: input width {in_dim} must equal "
                                 f"output width {out_dim}")
            self.W = nn.Linear(2 * in_dim, out_dim)
            nn.init.zeros_(self.W.weight)
            nn.init.zeros_(self.W.bias)
        else:
            raise ModelError(f"trainer.convolution: unknown form {form!r}; expected "
                             f"{' or '.join(map(repr, Convolution.values()))}")

    def message(self, h: torch.Tensor) -> torch.Tensor:
        """What a neighbour sends: ReLU(Q·h_v + q) (paper) or h_v itself (residual)."""
        return F.relu(self.Q(h)) if self.form == Convolution.PAPER else h

    def forward(self, h_self: torch.Tensor, h_nbrs: torch.Tensor,
                weights: torch.Tensor) -> torch.Tensor:
        """Layer-wise form: neighbours' vectors already gathered, [n, k, d]."""
        nbr = self.message(h_nbrs)                                    # [n, k, out]
        alpha = pooling_weights(weights, self.pooling).to(nbr.dtype)  # [n, k]
        return self.combine(h_self, torch.einsum("nk,nkd->nd", alpha, nbr))

    def forward_block(self, h: torch.Tensor, index: torch.Tensor, weights: torch.Tensor,
                      num_dst: int) -> torch.Tensor:
        """Minibatch form, same result: a neighbour's message depends on v
        alone, so it is computed once per source node, and the weighted sum is
        an embedding_bag, never materialising the [n, k, d] gather."""
        nbr = self.message(h)                                         # [n_src, out]
        alpha = pooling_weights(weights, self.pooling).to(nbr.dtype)
        gamma = F.embedding_bag(index, nbr, per_sample_weights=alpha, mode="sum")
        return self.combine(h[:num_dst], gamma)

    def combine(self, h_self: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        h_self = h_self.to(gamma.dtype)
        mixed = self.W(torch.cat([h_self, gamma], dim=-1))
        if self.form == Convolution.PAPER:
            return l2_normalise(F.relu(mixed))
        return h_self + gamma + mixed


class PinSage(nn.Module):
    def __init__(self, *, feature_dim: int, hidden_dim: int, embedding_dim: int,
                 num_layers: int, id_embedding_buckets: int = 0, pooling: str = "importance",
                 dense_layers: int = 2, item_type: str = "item",
                 convolution: str = Convolution.RESIDUAL, candidate_prior: bool = False,
                 prior_items: int = 0):
        super().__init__()
        self.num_layers = int(num_layers)
        self.encoder = InputEncoder(feature_dim, hidden_dim, id_embedding_buckets,
                                    what=item_type)
        self.convs = nn.ModuleList(PinSageConv(hidden_dim, hidden_dim, pooling, convolution)
                                   for _ in range(num_layers))
        self.head = DenseHead(hidden_dim, hidden_dim, embedding_dim, dense_layers,
                              residual=str(convolution) == Convolution.RESIDUAL,
                              prior=candidate_prior, degree_items=prior_items)

    def input_vectors(self, features: torch.Tensor | None, node_ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(features, node_ids)

    def convolve(self, layer: int, h_self: torch.Tensor, h_nbrs: torch.Tensor,
                 weights: torch.Tensor) -> torch.Tensor:
        return self.convs[layer](h_self, h_nbrs, weights)

    def finalize(self, h: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """The head: [z] or [z ‖ β]; `ids` (the items' dense ids) for a degree prior."""
        return self.head(h, ids)

    def forward(self, batch) -> torch.Tensor:
        """Embeddings of `batch.node_sets[-1]` (the targets), [n, embedding_dim]
        ([z ‖ β], one column more, with candidate_prior)."""
        if len(batch.nbr_index) != self.num_layers:
            raise ModelError(f"batch has {len(batch.nbr_index)} layers, the model "
                             f"{self.num_layers}; sampler.num_layers must be the same on "
                             "producers and trainer")
        h = self.input_vectors(batch.features, batch.node_sets[0])
        for k in range(self.num_layers):
            h = self.convs[k].forward_block(h, batch.nbr_index[k], batch.nbr_weight[k],
                                            batch.num_dst[k])
        return self.finalize(h, batch.node_sets[-1])
