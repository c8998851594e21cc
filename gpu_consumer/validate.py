"""Validation inside training: hit-rate@K on held-out pairs (PinSage §4).

For a sample of held-out (query, positive) pairs, the positive is ranked by
z_q·z against a fixed random pool of candidate items (the query and the
positive excluded from the pool) with the one ranking `sagewalk evaluate` uses
(gpu_consumer/ranking.py: ties count half); a hit is a rank of at most K.  Chance level is
K / (pool + 1), reported beside the figure so a reader can tell learning from
luck.  With the candidate prior (trainer.candidate_prior) queries score as
[z ‖ 1] against candidates [z ‖ β] (gpu_consumer/prior.py), as in training
and serving.  Embeddings come from the sampler's inference batches, i.e. the same
computation graphs as training, with the model in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gpu_consumer import ranking
from gpu_consumer.prior import queries_for
from gpu_consumer.tensors import TensorBatch


@dataclass(frozen=True)
class ValidationResult:
    hit_rate: float
    mrr: float
    k: int
    pairs: int
    candidates: int

    @property
    def chance(self) -> float:
        return min(1.0, self.k / (self.candidates + 1))


@dataclass(frozen=True)
class ValidationSet:
    """A fixed sample, drawn once per run so successive passes are comparable."""

    queries: np.ndarray
    positives: np.ndarray
    candidates: np.ndarray

    @classmethod
    def draw(cls, pairs: tuple[np.ndarray, np.ndarray], num_items: int, *, max_pairs: int,
             max_candidates: int, seed: int) -> "ValidationSet":
        rng = np.random.default_rng(seed)
        queries, positives = (np.asarray(a, dtype=np.int64) for a in pairs)
        if len(queries) > max_pairs:
            pick = rng.choice(len(queries), size=max_pairs, replace=False)
            queries, positives = queries[pick], positives[pick]
        pool = (np.arange(num_items, dtype=np.int64) if num_items <= max_candidates
                else np.sort(rng.choice(num_items, size=max_candidates, replace=False)))
        return cls(queries, positives, pool)


def embed_nodes(embed_batch, builder, nodes: np.ndarray, *, chunk: int = 512) -> torch.Tensor:
    """Embeddings [len(nodes), d] through `builder.inference_batch`, `chunk` at a time.
    `embed_batch(TensorBatch) -> target embeddings` (e.g. `Trainer.embed`)."""
    out = []
    for start in range(0, len(nodes), chunk):
        part = np.asarray(nodes[start:start + chunk], dtype=np.int64)
        batch = TensorBatch.from_minibatch(builder.inference_batch(part))
        emb = embed_batch(batch)
        out.append(emb[batch.queries.to(emb.device)].float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def embed_sample(embed_batch, builder, vset: ValidationSet
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The embeddings of the sample's queries, positives and candidates, each
    distinct node embedded once."""
    unique, inverse = np.unique(np.concatenate([vset.queries, vset.positives, vset.candidates]),
                                return_inverse=True)
    z = embed_nodes(embed_batch, builder, unique)
    n = len(vset.queries)
    return z[inverse[:n]], z[inverse[n:2 * n]], z[inverse[2 * n:]]


def excluded(vset: ValidationSet, rows: slice = slice(None)) -> np.ndarray:
    """[rows, candidates]: the candidates that are a row's query or positive
    (they neither beat nor tie the positive)."""
    cand = vset.candidates
    return ((cand[None, :] == vset.queries[rows, None])
            | (cand[None, :] == vset.positives[rows, None]))


def hit_rate(embed_batch, builder, vset: ValidationSet, *, k: int = 10,
             prior: bool = False) -> ValidationResult:
    zq, zp, zc = embed_sample(embed_batch, builder, vset)
    return rank_positives(zq, zp, zc, vset, k=k, prior=prior)


def rank_positives(zq: torch.Tensor, zp: torch.Tensor, zc: torch.Tensor, vset: ValidationSet,
                   *, k: int, prior: bool = False) -> ValidationResult:
    """Rank of each positive among the candidates, as `sagewalk evaluate` ranks
    (gpu_consumer/ranking.py: ties count half, scaled MRR).  prior: the
    vectors are [z ‖ β] and the queries score as [z ‖ 1]."""
    zq = queries_for(zq, prior)
    positive = (zq * zp).sum(1).float().numpy()
    scores = (zq @ zc.T).float().numpy()
    ranks = ranking.positive_ranks(positive, scores, excluded(vset))
    return ValidationResult(hit_rate=ranking.hit_rate(ranks, k), mrr=ranking.scaled_mrr(ranks),
                            k=k, pairs=len(ranks), candidates=len(vset.candidates))


# The factors of the degree prior tried by `prior_factor`: 0 (cosines alone) to
# 4x the softmax's own scale, in eighths (ML-1M's pairs wanted 2 and more).
PRIOR_FACTORS = tuple(i / 8 for i in range(33))


def prior_factor(zq: np.ndarray, zp: np.ndarray, zc: np.ndarray, beta_p: np.ndarray,
                 beta_c: np.ndarray, vset: ValidationSet, *, rank_scale: float = 1.0,
                 factors: tuple[float, ...] = PRIOR_FACTORS, chunk: int = 256
                 ) -> tuple[float, list[float]]:
    """The factor f of the degree prior under which held-out positives rank
    best when every pair scores z_q·z_c + f·β_c: z are unit vectors without
    their β column, β_p / β_c the prior at the softmax's scale (f = 1) of each
    positive and candidate.  Ranked as `rank_positives` ranks, each rank
    times `rank_scale` (catalogue / candidates: the rank it would have among
    every item); "best" is the highest scaled MRR (PinSage's, 1 / ceil(rank /
    100)), which counts a rank in the top 100 whole and deeper ones less, so
    neither the top-1 hits a model memorises nor one K's noise decides; a tie
    goes to the factor nearest 1.  Returns f and the scaled MRR of each factor."""
    totals = np.zeros(len(factors))
    for start in range(0, len(zq), chunk):
        rows = slice(start, start + chunk)
        cos_c = zq[rows] @ zc.T
        cos_p = (zq[rows] * zp[rows]).sum(1)
        mask = excluded(vset, rows)
        for i, f in enumerate(factors):
            ranks = ranking.positive_ranks(cos_p + f * beta_p[rows],
                                           cos_c + f * beta_c[None, :], mask)
            totals[i] += float(np.sum(ranking.scaled_reciprocal(ranks * rank_scale)))
    mrr = [t / max(1, len(zq)) for t in totals]
    best = max(range(len(factors)), key=lambda i: (round(mrr[i], 12), -abs(factors[i] - 1.0)))
    return float(factors[best]), mrr
