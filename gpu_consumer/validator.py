"""Validation passes during training and the early-stopping record.

    validator = Validator(builder, num_items, config.trainer)
    entry = validator.validate(trainer.embed, step)   # None without held-out pairs
    validator.patience_spent                          # early stopping's verdict

The held-out sample is drawn once per run (trainer.seed), so successive passes
are comparable; the history, the best hit-rate and the passes since it travel
in checkpoints (`state` / `load`).
"""

from __future__ import annotations

import logging
import time

from gpu_consumer.config import TrainerConfig
from gpu_consumer.validate import (PRIOR_FACTORS, ValidationSet, embed_sample, hit_rate,
                                   prior_factor)
from monitoring import hook

log = logging.getLogger(__name__)


# The sample `calibrate_prior` ranks: more than a validation pass (one search at
# the end of a run, not one every validate_every steps).
CALIBRATION_PAIRS = 2000
CALIBRATION_CANDIDATES = 10_000


class Validator:
    def __init__(self, builder, num_items: int, cfg: TrainerConfig):
        self.builder, self.num_items, self.cfg = builder, num_items, cfg
        self.history: list[dict] = []
        self.best_hit_rate, self.bad_passes = -1.0, 0
        self._vset: ValidationSet | None = None

    @property
    def patience_spent(self) -> bool:
        patience = self.cfg.early_stopping_patience
        return bool(patience) and self.bad_passes >= patience

    @property
    def best(self) -> float | None:
        """The best hit-rate so far (None before the first pass)."""
        return self.best_hit_rate if self.history else None

    def validated_at(self, step: int) -> bool:
        return bool(self.history) and self.history[-1]["step"] == step

    def validate(self, embed, step: int) -> dict | None:
        """One pass with `embed(TensorBatch) -> target embeddings`; its entry."""
        pairs = self.builder.validation_pairs()
        if len(pairs[0]) == 0:
            return None
        if self._vset is None:
            self._vset = ValidationSet.draw(pairs, self.num_items,
                                            max_pairs=self.cfg.validation_queries,
                                            max_candidates=self.cfg.validation_candidates,
                                            seed=self.cfg.seed)
        started = time.perf_counter()
        result = hit_rate(embed, self.builder, self._vset, k=self.cfg.validation_k,
                          prior=self.cfg.candidate_prior)
        entry = {"step": step, "hit_rate": result.hit_rate, "mrr": result.mrr,
                 "chance": result.chance, "pairs": result.pairs,
                 "candidates": result.candidates}
        self.history.append(entry)
        if result.hit_rate > self.best_hit_rate:
            self.best_hit_rate, self.bad_passes = result.hit_rate, 0
        else:
            self.bad_passes += 1
        hook.set("sagewalk_validation_hit_rate", result.hit_rate, k=str(result.k))
        log.info("validation step %d: hit-rate@%d %.4f (chance %.4f, %d pairs, %d candidates, "
                 "%.1f s)", entry["step"], result.k, result.hit_rate, result.chance,
                 result.pairs, result.candidates, time.perf_counter() - started)
        return entry

    def calibrate_prior(self, embed, beta) -> dict | None:
        """The factor of the degree prior `beta` (float [items], at the
        softmax's scale) under which the held-out pairs rank best
        (validate.prior_factor), from a sample of its own (seeded, so a rerun
        picks the same); None without held-out pairs."""
        import numpy as np
        pairs = self.builder.validation_pairs()
        if len(pairs[0]) == 0:
            return None
        started = time.perf_counter()
        vset = ValidationSet.draw(pairs, self.num_items, max_pairs=CALIBRATION_PAIRS,
                                  max_candidates=CALIBRATION_CANDIDATES, seed=self.cfg.seed + 1)
        unit = slice(None, -1) if self.cfg.candidate_prior else slice(None)   # β dropped
        zq, zp, zc = (z.float().numpy()[:, unit]
                      for z in embed_sample(embed, self.builder, vset))
        n = len(vset.queries)
        beta = np.asarray(beta, np.float32)
        factor, mrr = prior_factor(zq, zp, zc, beta[vset.positives], beta[vset.candidates], vset,
                                   rank_scale=self.num_items / len(vset.candidates))
        log.info("degree prior: factor %.3g of tau x log(1 + degree) ranks the held-out pairs "
                 "best (scaled MRR %.4f; cosines alone %.4f, factor 1 %.4f; %d pairs, %d "
                 "candidates, %.1f s)", factor, max(mrr), mrr[0], mrr[PRIOR_FACTORS.index(1.0)],
                 n, len(vset.candidates), time.perf_counter() - started)
        return {"factor": factor, "factors": list(PRIOR_FACTORS),
                "mrr_by_factor": [round(m, 6) for m in mrr],
                "pairs": n, "candidates": len(vset.candidates)}

    def state(self) -> dict:
        """The checkpoint's keys for validation (as they were before the split)."""
        return {"validation": list(self.history), "best_hit_rate": self.best_hit_rate,
                "bad_passes": self.bad_passes}

    def load(self, state: dict) -> None:
        self.history = list(state["validation"])
        self.best_hit_rate, self.bad_passes = state["best_hit_rate"], int(state["bad_passes"])
