"""Adam with learning-rate warm-up and decay, as a pure function of the step.

The schedule is a function of the global step only, so a resumed run gets
exactly the rate an uninterrupted one would have had, with nothing but the
step count in the checkpoint.
"""

from __future__ import annotations

import math

import torch


def learning_rate(step: int, *, lr: float, warmup_steps: int, total_steps: int,
                  decay: str = "cosine", min_ratio: float = 0.1) -> float:
    """Rate for optimiser step `step` (0-based): linear warm-up from lr/warmup
    to lr, then decay to min_ratio*lr at `total_steps` ('none' keeps lr)."""
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if decay == "none" or total_steps <= warmup_steps:
        return lr
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    if decay == "linear":
        shape = 1.0 - progress
    elif decay == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        raise ValueError(f"trainer.lr_decay: unknown decay {decay!r}")
    return lr * (min_ratio + (1.0 - min_ratio) * shape)


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value
