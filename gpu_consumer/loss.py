"""Ranking losses over a batch's negatives, and the hard-negative curriculum.

PinSage's max-margin loss (§3.3), averaged over every (example, negative)
triplet: the batch's shared easy negatives plus each example's hard negatives,

    J(q, p, n) = max(0, z_q·z_n − z_q·z_p + Δ)

and a sampled softmax over the same negatives (temperature τ),

    J(q, p) = −log( exp(z_q·z_p/τ) / (exp(z_q·z_p/τ) + Σ_n exp(z_q·z_n/τ)) )

The hinge stops pushing once every negative is Δ below the positive, which on
a small catalogue happens early for most of them; the softmax keeps weighting
the negatives that still outrank the positive, which is what HITS@K measures.
Whatever the loss, the logged easy/hard figures are the mean hinge violations
so runs with either loss read alike.

With the candidate prior (trainer.candidate_prior, gpu_consumer/prior.py) the
embeddings are [z ‖ β] and every score above, the positive's and each
negative's alike, is as_queries(v_q)·v_c = z_q·z_c + β_c: the candidate's
prior is learned by the same loss that learns z.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gpu_consumer.config import LossKind
from gpu_consumer.prior import queries_for

LOSSES = LossKind.values()


@dataclass(frozen=True)
class LossParts:
    """The loss and the figures logged beside it (plain floats)."""

    loss: torch.Tensor
    easy: float
    hard: float
    violated_ratio: float


def ranking_loss(kind: str, embeddings: torch.Tensor, queries: torch.Tensor,
                 positives: torch.Tensor, easy_negatives: torch.Tensor,
                 hard_negatives: torch.Tensor, *, margin: float, temperature: float = 0.1,
                 in_batch: bool = False, prior: bool = False,
                 negative_logq: torch.Tensor | None = None) -> LossParts:
    """embeddings [T, d] of the batch targets; the other arguments are
    positions into it (hard_negatives [B, h], h may be 0; entries < 0 are padding).

    in_batch: also use every other example's positive as a negative (those
    that are neither this example's positive nor its query).  They are
    embedded already, so they cost one [B, B] product, and they follow the
    positives' distribution, popular items included, where uniform easy
    negatives are mostly obscure ones.  Counted with the easy negatives.

    prior: the embeddings are [z ‖ β] (trainer.candidate_prior); queries score
    as [z ‖ 1], so each candidate's β adds to its score.  Told by the trainer,
    not guessed from the width, which cannot tell a prior column from one
    more dimension.

    negative_logq [B, N + h]: the softmax subtracts it from the negatives'
    logits (the shared easy negatives' columns, then the hard ones'; in-batch
    negatives get none), the correction that keeps hard negatives from
    biasing a sampled softmax (sampler.negatives.logq_correction).  The hinge
    is not a likelihood and ignores it."""
    if kind not in LOSSES:
        raise ValueError(f"trainer.loss: unknown loss {kind!r}; expected one of "
                         f"{', '.join(LOSSES)}")
    z = embeddings.float()
    q = queries_for(z[queries], prior)
    pos = (q * z[positives]).sum(-1, keepdim=True)                 # [B, 1]
    scores, mask, n_easy = _negative_scores(z, q, queries, positives, easy_negatives,
                                            hard_negatives, in_batch)
    violation = F.relu(scores - pos + margin) * mask
    if kind == "max_margin":
        loss = violation.sum() / mask.sum().clamp_min(1)
    else:
        logits = torch.cat([pos, scores.masked_fill(~mask, float("-inf"))], dim=1) / temperature
        if negative_logq is not None and negative_logq.numel():
            logits = logits - _correction_columns(negative_logq.float(), n_easy, logits.shape[1])
        loss = -F.log_softmax(logits, dim=1)[:, 0].mean()
    with torch.no_grad():
        easy = violation[:, :n_easy].sum() / max(1, int(mask[:, :n_easy].sum()))
        hard = violation[:, n_easy:].sum() / max(1, int(mask[:, n_easy:].sum()))
        violated = ((violation > 0) & mask).sum() / mask.sum().clamp_min(1)
    return LossParts(loss, float(easy), float(hard), float(violated))


def max_margin_loss(embeddings, queries, positives, easy_negatives, hard_negatives,
                    margin: float, in_batch: bool = False, prior: bool = False) -> LossParts:
    """PinSage's hinge loss (see ranking_loss)."""
    return ranking_loss("max_margin", embeddings, queries, positives, easy_negatives,
                        hard_negatives, margin=margin, in_batch=in_batch, prior=prior)


def _negative_scores(z, q, queries, positives, easy_negatives, hard_negatives, in_batch):
    """[B, N] query·negative scores, the mask of real negatives, and how many
    leading columns are easy (shared and in-batch) rather than hard.  A shared
    negative that is this example's positive or query is masked out: it is an
    accidental hit, not a negative."""
    terms, masks = [], []
    if easy_negatives.numel():
        terms.append(q @ z[easy_negatives].T)                      # [B, N]
        masks.append((easy_negatives[None, :] != positives[:, None])
                     & (easy_negatives[None, :] != queries[:, None]))
    if in_batch and queries.numel() > 1:
        terms.append(q @ z[positives].T)                           # [B, B]
        masks.append((positives[None, :] != positives[:, None])
                     & (positives[None, :] != queries[:, None]))
    n_easy = sum(t.shape[1] for t in terms)
    if hard_negatives.numel():
        valid = hard_negatives >= 0
        hard = z[hard_negatives.clamp_min(0)]                      # [B, h, d]
        terms.append(torch.einsum("bd,bhd->bh", q, hard))
        masks.append(valid)
    if not terms:
        raise ValueError("ranking loss: the batch has no negatives (easy or hard); "
                         "set sampler.easy_negatives > 0")
    return torch.cat(terms, dim=1), torch.cat(masks, dim=1), n_easy


def _correction_columns(logq: torch.Tensor, n_easy: int, width: int) -> torch.Tensor:
    """[B, width] with the positive's column and the in-batch negatives'
    (between the easy and the hard ones) at 0: logq [B, N + h] spread over
    the logits' columns [positive | easy N | in-batch | hard h]."""
    b, nh = logq.shape
    h = width - 1 - n_easy
    n = nh - h
    if n < 0 or n > n_easy:
        raise ValueError(f"negative_logq has {nh} columns; the batch scores {n_easy} easy "
                         f"and {h} hard negatives")
    zeros = logq.new_zeros
    return torch.cat([zeros(b, 1), logq[:, :n], zeros(b, n_easy - n), logq[:, n:]], dim=1)


def hard_negatives_for(epoch: int, schedule: tuple[int, ...] = ()) -> int:
    """Hard negatives per example in (0-based) `epoch`.  PinSage: epoch n
    (1-based) adds n−1, so 0, 1, 2, ...; a configured schedule lists the counts
    for epochs 1, 2, ... and its last entry holds for every later epoch."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if schedule:
        return int(schedule[min(epoch, len(schedule) - 1)])
    return epoch
