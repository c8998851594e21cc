"""The training step: forward, ranking loss (max-margin or softmax), backward, clip, Adam.

    trainer = Trainer(model, trainer_cfg, total_steps=...)
    result = trainer.train_step(tbatch)        # StepResult (plain floats)
    state = trainer.state_dict()               # into the checkpoint
    trainer.load_state_dict(state)             # on resume

On CUDA the batch is copied with non-blocking copies (it arrives pinned) and
the forward pass runs under bf16 autocast; the loss and the optimiser work in
float32.  On CPU everything is float32 unless trainer.precision = 'bf16'.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np
import torch

from gpu_consumer import distributed, prior
from gpu_consumer.config import TrainerConfig
from gpu_consumer.layers import ModelError
from gpu_consumer.loss import ranking_loss
from gpu_consumer.optim import learning_rate, make_optimizer, set_learning_rate


@dataclass(frozen=True)
class StepResult:
    loss: float
    easy_loss: float
    hard_loss: float
    violated_ratio: float
    lr: float
    examples: int
    seconds: float
    grad_norm: float


def resolve_device(setting: str, local_rank: int = 0) -> torch.device:
    """'auto' -> CUDA (this rank's GPU) when present, else CPU."""
    if setting == "auto":
        setting = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(setting)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"trainer.device: {setting!r} requested but CUDA is not available "
                         "here; use 'auto' or 'cpu'")
    return device


def _check_prior(model: torch.nn.Module, cfg: TrainerConfig) -> None:
    """The loss scores with a prior column when the config says so; a model
    built with a different setting would have its last column misread."""
    spec = getattr(model, "spec", None)
    built = getattr(spec, "candidate_prior", None)
    if built is not None and bool(built) != bool(cfg.candidate_prior):
        raise ModelError(f"trainer.candidate_prior is {cfg.candidate_prior} but the model was "
                         f"built with candidate_prior={built}; build it from the same config")
    source = getattr(spec, "prior_source", "learned")
    if built is not None and cfg.candidate_prior and source != str(cfg.prior_source):
        raise ModelError(f"trainer.prior_source is {str(cfg.prior_source)!r} but the model was "
                         f"built with prior_source={source!r}; build it from the same config")


def use_bf16(precision: str, device: torch.device) -> bool:
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


class Trainer:
    def __init__(self, model: torch.nn.Module, cfg: TrainerConfig, *, total_steps: int,
                 device: torch.device | None = None):
        self.cfg = cfg
        self.device = device or resolve_device(cfg.device)
        self.model = model.to(self.device)
        _check_prior(model, cfg)
        distributed.broadcast_parameters(self.model)
        self.optimizer = make_optimizer(self.model, cfg)
        self.total_steps = int(total_steps)
        self.step = 0
        # Share of trainer.time_budget_s spent by the end of the next step; the
        # session sets it before each step (None: no budget, a plan in steps).
        self.elapsed: float | None = 0.0 if cfg.time_budget_s > 0 else None
        self.bf16 = use_bf16(cfg.precision, self.device)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def current_lr(self) -> float:
        c = self.cfg
        return learning_rate(self.step, lr=c.lr, warmup_steps=c.warmup_steps,
                             total_steps=self.total_steps, decay=c.lr_decay,
                             min_ratio=c.min_lr_ratio, elapsed=self.elapsed,
                             warmup_fraction=c.warmup_fraction)

    def embed(self, batch) -> torch.Tensor:
        """Target embeddings in eval mode, no gradients (validation, inference)."""
        self.model.eval()
        with torch.no_grad(), self._autocast():
            return self.model(batch.to(self.device, non_blocking=True)).float()

    def train_step(self, batch) -> StepResult:
        start = time.perf_counter()
        batch = batch.to(self.device, non_blocking=True)
        self.model.train()
        with self._autocast():
            embeddings = self.model(batch)
        c = self.cfg
        scored = prior.in_loss(c)
        if c.candidate_prior and not scored:   # a fixed β joins where the vectors are served
            embeddings = prior.unit_part(embeddings)
        parts = ranking_loss(c.loss, embeddings.float(), batch.queries, batch.positives,
                             batch.easy_negatives, batch.hard_negatives, margin=c.margin,
                             temperature=c.temperature, in_batch=c.in_batch_negatives,
                             prior=scored, negative_logq=batch.negative_logq)
        self.optimizer.zero_grad(set_to_none=True)
        parts.loss.backward()
        lr, norm = self._update(contributes=True)
        loss = float(parts.loss.detach())
        return StepResult(loss, parts.easy, parts.hard, parts.violated_ratio, lr,
                          batch.size, time.perf_counter() - start, norm)

    def idle_step(self) -> StepResult:
        """A step without a batch, for a rank whose share of an epoch is one
        batch short (uneven last round): it joins the gradient all-reduce with
        nothing to add and applies the same update as the ranks that trained."""
        start = time.perf_counter()
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        lr, norm = self._update(contributes=False)
        nan = float("nan")
        return StepResult(nan, nan, nan, nan, lr, 0, time.perf_counter() - start, norm)

    def _update(self, *, contributes: bool) -> tuple[float, float]:
        """Average gradients across ranks, clip, Adam; (lr, grad norm)."""
        contributors = distributed.average_gradients(self.model, contributes)
        norm = (torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
                if self.cfg.grad_clip > 0 and contributors else torch.tensor(float("nan")))
        lr = self.current_lr()
        set_learning_rate(self.optimizer, lr)
        if contributors:  # nobody had a batch (not in a planned run): no update
            self.optimizer.step()
        self.step += 1
        return lr, float(norm)

    # -- checkpoint state ------------------------------------------------------
    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step, "rng": rng_state()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        if "rng" in state:
            set_rng_state(state["rng"])


def rng_state() -> dict:
    """Every RNG the trainer process draws from, as tensors and plain data."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
