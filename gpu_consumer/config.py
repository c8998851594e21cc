"""[trainer]: the model, the loss, optimisation and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

from common.schema import (Choice, in_range, non_negative, one_of, positive, probability,
                           setting)
from sampler.config import ModelKind


class Pooling(Choice):
    IMPORTANCE = "importance"   # visit-count weighted mean (PinSage)
    UNIFORM = "uniform"         # plain mean over the real neighbours (ablation)


class Convolution(Choice):
    RESIDUAL = "residual"       # z = h + γ + W·[h ‖ γ], W zero at start; head likewise
    PAPER = "paper"             # Algorithm 1 as printed: ReLU(W·[h ‖ ReLU(Q·h_v)]), L2 per layer


class PriorSource(Choice):
    LEARNED = "learned"         # β = b·h + c of the head's input, zero at start
    DEGREE = "degree"           # β = s·log(1 + degree), s from τ and the negatives (prior.py)


class LossKind(Choice):
    MAX_MARGIN = "max_margin"
    SOFTMAX = "softmax"


class LrDecay(Choice):
    COSINE = "cosine"
    LINEAR = "linear"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    model: ModelKind = setting(ModelKind.PINSAGE, "Model: 'pinsage' or 'multisage'.")
    hidden_dim: int = setting(256, "Width of the convolution layers.", check=positive)
    embedding_dim: int = setting(128, "Width of the final embeddings.", check=positive)
    convolution: Convolution = setting(
        Convolution.RESIDUAL, "Layer form: 'residual' (h + gamma + W.[h || gamma], W zero at "
        "start, a residual head; keeps items apart, docs/quality.md) or 'paper' (PinSage's "
        "Algorithm 1 as printed: ReLU and L2 per layer; collapses id-only inputs).")
    pooling: Pooling = setting(Pooling.IMPORTANCE, "Neighbour pooling: 'importance' "
                               "(visit-count weighted) or 'uniform' (ablation).")
    id_embedding_buckets: int = setting(0, "Hashed learnable id-embedding table size "
                                        "(0 disables id embeddings).", check=non_negative)
    loss: LossKind = setting(LossKind.MAX_MARGIN, "Ranking loss: 'max_margin' (PinSage's "
                             "hinge) or 'softmax' (sampled softmax over the same negatives).")
    margin: float = setting(0.1, "Max-margin loss margin Delta.", check=positive)
    temperature: float = setting(0.1, "Softmax loss temperature tau (scores are cosines).",
                                 check=positive)
    in_batch_negatives: bool = setting(
        False, "Also use the other examples' positives as negatives (free: they are "
        "embedded already; they follow the positives' popularity, unlike uniform negatives).")
    candidate_prior: bool = setting(
        False, "Learn a per-item prior beta (a linear map of the item's last hidden vector, "
        "zero at start) exported as an extra last column [z || beta]; every score becomes "
        "z_q.z_c + beta_c (queries are [z || 1]), so popular items can rank higher than "
        "cosine alone allows (docs/quality.md, docs/serving.md).")
    prior_source: PriorSource = setting(
        PriorSource.LEARNED, "Where the candidate prior beta comes from: 'learned' (a linear "
        "map of the item's last hidden vector) or 'degree' (tau x log(1 + the item's degree in "
        "the store), fixed: the popularity a sampled softmax over uniform negatives would "
        "learn; docs/quality.md).")
    prior_in_loss: bool = setting(
        False, "With prior_source='degree': also add the fixed beta to the training loss's "
        "scores.  Off, z is trained on cosines alone and beta is added where the vectors "
        "are served (index, evaluation); off scored higher on all four held-out-edge graphs "
        "(docs/quality.md, session 6).  A learned beta is always in the loss.")
    calibrate_prior: bool = setting(
        False, "With prior_source='degree' (not in the loss): at the end of the run, scale "
        "beta by the factor in 0..4 (eighths) under which the sampler's held-out pairs rank "
        "best, so the popularity added where served is as much as this graph's pairs show "
        "(docs/quality.md, session 16).  Recorded in run_summary.json.")
    hard_negative_schedule: tuple[int, ...] = setting(
        [], "Hard negatives per example in epoch 1, 2, ...; empty means PinSage's n-1 at "
        "epoch n.")
    epochs: int = setting(3, "Training epochs.", check=positive)
    batches_per_epoch: int = setting(0, "Batches per epoch (0: one pass over the training pairs).",
                                     check=non_negative)
    lr: float = setting(1e-3, "Adam learning rate after warm-up.", check=positive)
    warmup_steps: int = setting(100, "Linear learning-rate warm-up steps.", check=non_negative)
    grad_clip: float = setting(1.0, "Gradient norm clip (0 disables).", check=non_negative)
    device: str = setting("auto", "'auto' (CUDA when present), 'cpu' or 'cuda[:N]'.")
    precision: str = setting("auto", "'auto' (bf16 autocast on CUDA, fp32 on CPU), 'bf16' or "
                             "'fp32'.", check=one_of("auto", "bf16", "fp32"))
    run_dir: str = setting("runs/default", "Directory for checkpoints, logs and run_summary.json.")
    checkpoint_every_s: float = setting(60.0, "Seconds between checkpoints.", check=positive)
    keep_checkpoints: int = setting(3, "Checkpoints kept.", check=positive)
    validate_every: int = setting(200, "Batches between validation passes (0 disables).",
                                  check=non_negative)
    prefetch: int = setting(8, "Decoded batches buffered ahead of the training step.",
                            check=positive)
    dense_layers: int = setting(2, "Final dense layers after the convolutions (PinSage's G1, "
                                "G2); at least 1.", check=positive)
    attention_heads: int = setting(4, "MultiSage: heads of the contextual attention; must "
                                   "divide hidden_dim.", check=positive)
    context_combine: str = setting("mask", "MultiSage: how a context vector modulates a "
                                   "neighbour: 'mask' (z_t * z_c), 'translation' (z_t + z_c) "
                                   "or 'concat' (ablations).",
                                   check=one_of("mask", "translation", "concat"))
    context_start: str = setting("identity", "MultiSage: 'identity' starts every context's "
                                 "mask at 1 (its encoder's last layer at zero) and the "
                                 "attention at the importance weights, so the layer starts "
                                 "as importance pooling and learns what the contexts change; "
                                 "'random' starts both from random weights.",
                                 check=one_of("identity", "random"))
    lr_decay: LrDecay = setting(LrDecay.COSINE, "Learning-rate decay after warm-up: 'cosine' "
                                "(to min_lr_ratio * lr at the last step), 'linear' or 'none'.")
    min_lr_ratio: float = setting(0.1, "Final learning rate as a fraction of lr.",
                                  check=probability)
    weight_decay: float = setting(0.0, "Adam weight decay (L2).", check=non_negative)
    seed: int = setting(0, "Seed of parameter initialisation and trainer-side randomness.",
                        check=non_negative)
    validation_queries: int = setting(500, "Held-out pairs scored per validation pass.",
                                      check=positive)
    validation_candidates: int = setting(1000, "Random items each held-out positive is "
                                         "ranked against (all items when fewer).",
                                         check=positive)
    validation_k: int = setting(10, "K of the validation hit-rate@K.", check=positive)
    early_stopping_patience: int = setting(0, "Stop after this many validation passes "
                                           "without a better hit-rate (0 disables).",
                                           check=non_negative)
    max_steps: int = setting(0, "Stop after this many training steps in total (0: run "
                             "every epoch).", check=non_negative)
    time_budget_s: float = setting(
        0.0, "Wall-clock training budget in seconds (0: off).  The learning-rate plan's "
        "progress is the larger of steps/planned steps and trained seconds/budget, so the "
        "decay ends within the budget at any step rate; the run stops ('time_budget') after "
        "the step that spends it.  Carried in checkpoints: a resumed run gets what is left.",
        check=non_negative)
    warmup_fraction: float = setting(
        0.0, "Warm-up as a share of the plan's progress (steps, or the budget's seconds "
        "under time_budget_s): the warm-up ends after warmup_steps steps or this share, "
        "whichever comes first, and the decay runs from this share to the end (0: "
        "warmup_steps alone).", check=in_range(0.0, 0.9))

    def relations(self):
        # MultiSage splits hidden_dim across its attention heads; PinSage has none.
        if self.model == ModelKind.MULTISAGE and self.hidden_dim % self.attention_heads:
            yield "attention_heads", (f"must divide trainer.hidden_dim ({self.hidden_dim}) "
                                      "for trainer.model = 'multisage'; pick a divisor")
