"""Max-margin ranking loss and the hard-negative curriculum (PinSage §3.3).

    J(q, p, n) = max(0, z_q·z_n − z_q·z_p + Δ)

averaged over every (example, negative) triplet: the batch's shared easy
negatives plus each example's own hard negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossParts:
    """The loss and the figures logged beside it (plain floats)."""

    loss: torch.Tensor
    easy: float
    hard: float
    violated_ratio: float


def max_margin_loss(embeddings: torch.Tensor, queries: torch.Tensor, positives: torch.Tensor,
                    easy_negatives: torch.Tensor, hard_negatives: torch.Tensor,
                    margin: float, in_batch: bool = False) -> LossParts:
    """embeddings [T, d] of the batch targets; the other arguments are
    positions into it (hard_negatives [B, h], h may be 0; entries < 0 are padding).

    in_batch: also use every other example's positive as a negative (those
    that are neither this example's positive nor its query).  They are
    embedded already, so they cost one [B, B] product, and they follow the
    positives' distribution, popular items included, where uniform easy
    negatives are mostly obscure ones.  Counted with the easy negatives."""
    z = embeddings.float()
    q, p = z[queries], z[positives]
    pos = (q * p).sum(-1, keepdim=True)                            # [B, 1]
    terms, masks = [], []
    if easy_negatives.numel():
        terms.append(q @ z[easy_negatives].T)                      # [B, N]
        masks.append(torch.ones_like(terms[-1], dtype=torch.bool))
    if in_batch and queries.numel() > 1:
        terms.append(q @ p.T)                                      # [B, B]
        masks.append((positives[None, :] != positives[:, None])
                     & (positives[None, :] != queries[:, None]))
    if hard_negatives.numel():
        valid = hard_negatives >= 0
        hard = z[hard_negatives.clamp_min(0)]                      # [B, h, d]
        terms.append(torch.einsum("bd,bhd->bh", q, hard))
        masks.append(valid)
    if not terms:
        raise ValueError("max_margin_loss: the batch has no negatives (easy or hard); "
                         "set sampler.easy_negatives > 0")
    scores, mask = torch.cat(terms, dim=1), torch.cat(masks, dim=1)
    violation = F.relu(scores - pos + margin) * mask
    loss = violation.sum() / mask.sum().clamp_min(1)
    with torch.no_grad():
        n_easy = scores.shape[1] - (hard_negatives.shape[1] if hard_negatives.numel() else 0)
        easy = violation[:, :n_easy].sum() / max(1, mask[:, :n_easy].sum())
        hard = violation[:, n_easy:].sum() / max(1, int(mask[:, n_easy:].sum()))
        violated = ((violation > 0) & mask).sum() / mask.sum().clamp_min(1)
    return LossParts(loss, float(easy), float(hard), float(violated))


def hard_negatives_for(epoch: int, schedule: tuple[int, ...] = ()) -> int:
    """Hard negatives per example in (0-based) `epoch`.  PinSage: epoch n
    (1-based) adds n−1, so 0, 1, 2, ...; a configured schedule lists the counts
    for epochs 1, 2, ... and its last entry holds for every later epoch."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if schedule:
        return int(schedule[min(epoch, len(schedule) - 1)])
    return epoch
