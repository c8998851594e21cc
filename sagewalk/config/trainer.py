"""[trainer]: the model, the loss, optimisation and checkpoints."""

from __future__ import annotations

from dataclasses import dataclass

from sagewalk.config.schema import non_negative, one_of, positive, setting


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    model: str = setting("pinsage", "Model: 'pinsage' or 'multisage'.",
                         check=one_of("pinsage", "multisage"))
    hidden_dim: int = setting(256, "Width of the convolution layers.", check=positive)
    embedding_dim: int = setting(128, "Width of the final embeddings.", check=positive)
    pooling: str = setting("importance", "Neighbour pooling: 'importance' (visit-count "
                           "weighted) or 'uniform' (ablation).", check=one_of("importance", "uniform"))
    id_embedding_buckets: int = setting(0, "Hashed learnable id-embedding table size "
                                        "(0 disables id embeddings).", check=non_negative)
    margin: float = setting(0.1, "Max-margin loss margin Delta.", check=positive)
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
