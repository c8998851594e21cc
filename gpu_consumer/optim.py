"""Adam with learning-rate warm-up and decay, as a pure function of the step.

The schedule is a function of the global step only, so a resumed run gets
exactly the rate an uninterrupted one would have had, with nothing but the
step count in the checkpoint.  Under a wall-clock budget (trainer.time_budget_s)
it is a function of the step and the share of the budget spent (`elapsed`),
whichever is further along, so the decay ends inside the budget however many
steps the machine manages; the session carries the seconds in the checkpoint.
"""

from __future__ import annotations

import math

import torch


def learning_rate(step: int, *, lr: float, warmup_steps: int, total_steps: int,
                  decay: str = "cosine", min_ratio: float = 0.1,
                  elapsed: float | None = None, warmup_fraction: float = 0.0) -> float:
    """Rate for optimiser step `step` (0-based): linear warm-up from lr/warmup
    to lr, then decay to min_ratio*lr at `total_steps` ('none' keeps lr).

    `elapsed` (None: no budget) is the share of a wall-clock budget spent by
    the end of this step, and `warmup_fraction` a warm-up given as a share of
    the plan; with either, see `progress_rate`."""
    if elapsed is not None or warmup_fraction > 0:
        return progress_rate(step, lr=lr, warmup_steps=warmup_steps, total_steps=total_steps,
                             decay=decay, min_ratio=min_ratio, elapsed=elapsed or 0.0,
                             warmup_fraction=warmup_fraction)
    if warmup_steps and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if decay == "none" or total_steps <= warmup_steps:
        return lr
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return lr * (min_ratio + (1.0 - min_ratio) * decay_shape(decay, progress))


def progress_rate(step: int, *, lr: float, warmup_steps: int, total_steps: int, decay: str,
                  min_ratio: float, elapsed: float, warmup_fraction: float) -> float:
    """The rate as a function of the plan's progress p = max((step+1)/total_steps,
    elapsed) in [0, 1]: whichever of the step plan and the clock is further on.

    Warm-up: linear, over warmup_steps steps or the first `warmup_fraction` of p,
    whichever ends first (either may be 0: not used).  Decay: from p =
    warmup_fraction to p = 1, where the rate is exactly min_ratio * lr, so the
    step that ends the plan or spends the budget is trained at the final rate."""
    done = (step + 1) / total_steps if total_steps > 0 else 0.0
    progress = min(1.0, max(done, elapsed))
    warm = 1.0
    if warmup_steps or warmup_fraction:
        warm = min(1.0, max((step + 1) / warmup_steps if warmup_steps else 0.0,
                            progress / warmup_fraction if warmup_fraction else 0.0))
    if decay == "none":
        return lr * warm
    after = max(0.0, progress - warmup_fraction) / (1.0 - warmup_fraction)
    return lr * warm * (min_ratio + (1.0 - min_ratio) * decay_shape(decay, after))


def decay_shape(decay: str, progress: float) -> float:
    """1 at progress 0 falling to 0 at progress 1."""
    if decay == "linear":
        return 1.0 - progress
    if decay == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"trainer.lr_decay: unknown decay {decay!r}")


def make_optimizer(model: torch.nn.Module, cfg) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value
