"""One training run: batches in, steps, validation, checkpoints, figures out.

    session = TrainingSession(config, store, builder)
    session.restore()                      # newest intact checkpoint, if any
    session.run(stream)                    # a BatchStream; until the plan is done or stop()
    figures = session.finish()             # last validation, checkpoint, run_dir/model.pt

The session runs the loop and decides together with the other ranks
(distributed consensus) when to checkpoint and stop.  What a checkpoint
carries comes from three parts: the Trainer (model, optimiser, RNG, step),
the RunState (this rank's epoch cursor, batches per epoch, examples, budget
used; gpu_consumer/run_state.py) and the Validator (validation history and
early stopping; gpu_consumer/validator.py).  Metrics go through
`monitoring.hook` only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Protocol

from common.errors import ConfigError, SagewalkError
from common.schema import to_dict
from gpu_consumer import checkpoint, distributed
from gpu_consumer.config import TrainerConfig
from gpu_consumer.layers import ModelError
from gpu_consumer.ledger import EpochPlan
from gpu_consumer.loss import hard_negatives_for
from gpu_consumer.model import build_model, export_model
from gpu_consumer.prior import degree_prior, degree_scale
from gpu_consumer.run_state import RunState
from gpu_consumer.train import Trainer, resolve_device
from gpu_consumer.validator import Validator
from monitoring import hook
from sampler.config import SamplerConfig, neighbourhood_settings

if TYPE_CHECKING:  # annotations only: importing the builder would load numba
    from graphstore.store import Store
    from worker.assemble import BatchBuilder

log = logging.getLogger(__name__)


class CheckpointMismatch(SagewalkError):
    """A checkpoint that this run cannot resume (another world size)."""


STATE_VERSION = 1
BUSY_WINDOW_S = 30.0


class TrainingStepError(SagewalkError):
    """A training step raised; the message names the batch's ticket."""


class RunConfig(Protocol):
    """The composed config (sagewalk.config.Config) as a session reads it: the
    [sampler] and [trainer] sections; all of it is saved in each checkpoint."""

    sampler: SamplerConfig
    trainer: TrainerConfig


class TrainingSession:
    def __init__(self, config: RunConfig, store: Store, builder: BatchBuilder, *,
                 rank: distributed.Rank | None = None, clock=time.monotonic):
        self.config, self.cfg, self.builder = config, config.trainer, builder
        # trainer.time_budget_s: the clock (seconds trained are in run_state)
        self.clock, self._run_started = clock, None
        self._budget_last, self.last_lr = False, None
        self.rank = rank or distributed.Rank()
        self.run_dir = self.cfg.run_dir
        self.device = resolve_device(self.cfg.device, self.rank.local_rank)
        self.num_items = store.node_types[config.sampler.item_type]
        # Rank r trains batches b % N == r of each epoch; tickets do not depend
        # on the rank, so the ranks together train the one-process epoch.
        self.plan = EpochPlan(self.cfg.epochs, num_batches=self.epoch_batches,
                              hard_negatives=self.hard_negatives, base_seed=config.sampler.seed,
                              rank=self.rank.rank, world_size=self.rank.world_size)
        self.store = store
        model = build_model(self.cfg, store, config.sampler)
        self.trainer = Trainer(model, self.cfg, total_steps=self.total_steps(),
                               device=self.device)
        self.run_state = RunState()
        self.validator = Validator(builder, self.num_items, self.cfg)
        self.stop_reason = ""
        self.last_checkpoint = 0.0
        self._stop = threading.Event()
        self._busy: deque[tuple[float, float]] = deque()
        self.stream = None

    # -- the plan ----------------------------------------------------------------
    def epoch_batches(self, epoch: int) -> int:
        """Batches in `epoch`, all ranks together."""
        available = int(self.builder.num_batches(epoch))
        if self.cfg.batches_per_epoch > available:
            # producers would be issued tickets for batches that do not exist
            raise ConfigError(
                f"trainer.batches_per_epoch = {self.cfg.batches_per_epoch}, but one pass over "
                f"the training pairs has {available} batches of sampler.batch_size = "
                f"{self.config.sampler.batch_size}; set it to at most {available} (0: a pass)")
        return self.cfg.batches_per_epoch or available

    def batches_in(self, epoch: int) -> int:
        """This rank's batches in `epoch`."""
        return len(self.plan.batches(epoch))

    def planned_steps(self) -> int:
        """Steps of the whole plan, the same on every rank (see EpochPlan.steps)."""
        return sum(self.plan.steps(e) for e in range(self.cfg.epochs))

    def hard_negatives(self, epoch: int) -> int:
        return hard_negatives_for(epoch, self.cfg.hard_negative_schedule)

    def total_steps(self) -> int:
        total = self.planned_steps()
        return min(total, self.cfg.max_steps) if self.cfg.max_steps else total

    # -- checkpoints ---------------------------------------------------------------
    def rank_state(self) -> dict:
        """What each rank resumes from: its own epoch cursor and counts (plain data)."""
        return self.run_state.rank_state(
            self.rank.rank, self.stream.state_dict() if self.stream is not None else None)

    def state(self, ranks: list[dict] | None = None) -> dict:
        """The checkpoint: model, optimiser, RNG and step (identical on every
        rank), and `ranks`, every rank's `rank_state()` in rank order."""
        ranks = ranks or [self.rank_state()]
        state = self.trainer.state_dict()
        state.update(
            version=STATE_VERSION, config=to_dict(self.config),
            model_spec=asdict(self.trainer.model.spec),
            world_size=self.rank.world_size, ranks=ranks, cursor=ranks[0]["cursor"],
            curriculum={"epoch": self.current_epoch(),
                        "hard_negatives": self.hard_negatives(self.current_epoch()),
                        "schedule": list(self.cfg.hard_negative_schedule)},
            epoch_done={str(k): v for k, v in self.run_state.epoch_done.items()},
            examples=self.run_state.examples, **self.validator.state(),
            budget=self.run_state.budget_state(self.cfg.time_budget_s, self.elapsed_seconds()))
        return state

    def restore(self) -> bool:
        """Resume from the newest intact checkpoint of run_dir; False when none."""
        state = checkpoint.load_latest(self.run_dir)
        if state is None:
            return False
        if state.get("model_spec") != asdict(self.trainer.model.spec):
            raise ModelError(
                f"{state['_path']}: checkpoint was written for another model "
                f"({state.get('model_spec')}); use a fresh trainer.run_dir or the same "
                "model settings")
        mine = self._own_rank_state(state)
        self.trainer.load_state_dict(state)
        self.run_state.restore(mine, state.get("budget", {}), self.cfg.time_budget_s)
        self.validator.load(state)
        log.info("resumed from %s at step %d (epoch %d)", state["_path"], self.trainer.step,
                 self.current_epoch() + 1)
        return True

    def _own_rank_state(self, state: dict) -> dict:
        world = int(state.get("world_size", 1))
        if world != self.rank.world_size:
            raise CheckpointMismatch(
                f"{state['_path']}: checkpoint was written by {world} trainer rank(s), this "
                f"run has {self.rank.world_size}; each rank resumes its own share of the "
                f"epoch, so restart with {world} rank(s) or use a fresh trainer.run_dir")
        if "ranks" not in state:  # written before per-rank cursors: one process
            return {"cursor": state["cursor"], "epoch_done": state["epoch_done"],
                    "examples": state["examples"]}
        return state["ranks"][self.rank.rank]

    def save_checkpoint(self) -> None:
        """Every rank calls this at the same step (a collective: each rank's
        cursor is gathered); rank 0 writes the file."""
        ranks = distributed.all_gather_json(self.rank_state(), self.device)
        if not self.rank.is_main:
            return
        try:
            path = checkpoint.save(self.run_dir, self.state(ranks), step=self.trainer.step,
                                   keep=self.cfg.keep_checkpoints)
        except OSError as err:  # e.g. a full disk: keep training, the old one is intact
            log.error("checkpoint at step %d failed, previous one kept: %s",
                      self.trainer.step, err)
            hook.inc("sagewalk_checkpoint_failures_total")
            return
        self.last_checkpoint = time.time()
        hook.set("sagewalk_last_checkpoint_timestamp_seconds", self.last_checkpoint)
        log.info("checkpoint %s", path)

    # -- the loop ----------------------------------------------------------------
    def stop(self, reason: str = "signal") -> None:
        """Ask the loop to end after the current step (signal-handler safe)."""
        self.stop_reason = self.stop_reason or reason
        self._stop.set()

    def current_epoch(self) -> int:
        for epoch in range(self.cfg.epochs):
            if self.run_state.epoch_done.get(epoch, 0) < self.batches_in(epoch):
                return epoch
        return self.cfg.epochs - 1

    def run(self, stream) -> None:
        """Train on every batch `stream` yields until it ends or `stop()`."""
        self.stream = stream
        self.last_checkpoint = time.time()
        if self.cfg.max_steps and self.trainer.step >= self.cfg.max_steps:
            self.stop("max_steps")  # the same step on every rank: all return here
            return
        budget = self.cfg.time_budget_s
        # A run that stopped for its budget ended its decay: a resume has nothing left
        # (the last step may have been planned up to one step time before the end).
        done = self.run_state
        if budget and (done.budget_spent or done.trained_seconds >= budget):
            log.warning("trainer.time_budget_s = %g s is spent (%.1f s trained, carried in the "
                        "checkpoint); raise it or use a fresh trainer.run_dir to train more",
                        budget, done.trained_seconds)
            self.stop("time_budget")
            return
        self._run_started = self.clock()
        if budget and self.rank.world_size == 1 and hasattr(stream, "give_up"):
            # The budget is checked between steps; a stream that waits for data
            # is told too, or producers slower than the budget (a cold store in
            # a memory cap) would keep the trainer past it.  Several ranks stop
            # together after a step (_after_step), so only a lone rank is told.
            stream.give_up = lambda: self.elapsed_seconds() >= budget
        try:
            if not self._train_own_batches(stream) and self.rank.world_size > 1:
                self._idle_to_the_end()
        finally:
            self.run_state.trained_seconds, self._run_started = self.elapsed_seconds(), None
        if getattr(stream, "gave_up", False) and not self.stop_reason:
            log.warning("trainer.time_budget_s = %g s spent waiting for a batch after step %d "
                        "(lr %.3g, the decay not finished): the producers were slower than "
                        "the budget; the data-wait ratio in run_summary.json says by how much",
                        budget, self.trainer.step, self.trainer.current_lr())
            self.run_state.budget_spent = True
            self.stop("time_budget")
        if not self.stop_reason:
            self.stop_reason = "completed"

    # -- the wall-clock budget -------------------------------------------------------
    def elapsed_seconds(self) -> float:
        """Seconds trained under trainer.time_budget_s: earlier runs' (from the
        checkpoint) plus this run's time in `run` (steps, data waits, validation)."""
        running = self.clock() - self._run_started if self._run_started is not None else 0.0
        return self.run_state.trained_seconds + running

    def _before_step(self) -> None:
        """Tell the trainer how much of the budget will be spent by the end of
        the next step, projected from the mean step time over the last 30 s;
        when no further step would fit after it, it is the last one and gets
        progress 1, the final learning rate.  Several ranks agree on the values."""
        budget = self.cfg.time_budget_s
        if not budget:
            return
        walls = [b[2] for b in self._busy]
        per_step = sum(walls) / len(walls) if walls else 0.0
        projected = self.elapsed_seconds() + per_step
        last = projected + per_step >= budget
        fraction = 1.0 if last else projected / budget
        if self.rank.world_size > 1:
            agreed = distributed.all_gather_json([fraction, last], self.device)
            fraction, last = max(a[0] for a in agreed), any(a[1] for a in agreed)
        self.trainer.elapsed, self._budget_last = min(1.0, fraction), last

    def _train_own_batches(self, stream) -> bool:
        """Train every batch the stream yields; True when the ranks agreed to stop."""
        last = self.clock()  # step walls also project the budget: one clock for both
        for tbatch in stream:
            # Several ranks decide to stop together after a step (_after_step);
            # one rank leaving here alone would hang the others' all-reduce.
            if self._stop.is_set() and self.rank.world_size == 1:
                return True
            self._before_step()
            result = self._step(tbatch)
            stream.done(tbatch.ticket)
            self._account(tbatch.ticket, result, self.clock() - last)
            last = self.clock()
            if self._after_step():
                return True
        return False

    def _step(self, tbatch):
        """One training step; a failure names its ticket and ends the run (no
        checkpoint of a half-applied step: a restart resumes from the last one)."""
        try:
            return self.trainer.train_step(tbatch)
        except Exception as err:
            t = tbatch.ticket
            log.exception("training step %d failed on ticket epoch %d batch %d (seed %d)",
                          self.trainer.step + 1, t.epoch, t.batch, t.seed)
            raise TrainingStepError(
                f"training step {self.trainer.step + 1} failed on the batch of ticket epoch "
                f"{t.epoch} batch {t.batch} (seed {t.seed}): {type(err).__name__}: {err}. "
                f"Nothing of it was saved: restart the trainer to resume from the newest "
                f"checkpoint in {self.run_dir}; if the same ticket fails again, the batch "
                "itself is bad (check the store with `sagewalk store info`)") from err

    def _idle_to_the_end(self) -> None:
        """A rank whose share was one batch short in some epochs (batches % N
        != 0) takes that many idle steps at the end, in lockstep with the
        ranks still training: zero gradients, left out of the mean.  Rank 0
        has the largest share of every epoch, so every step trains >= 1 batch."""
        planned = self.planned_steps()
        while self.trainer.step < planned:
            self._before_step()
            self.trainer.idle_step()
            if self._after_step():
                return

    def _account(self, ticket, result, wall: float) -> None:
        self.run_state.count(ticket, result.examples)
        self.last_lr = result.lr
        now = self.clock()
        self._busy.append((now, result.seconds, wall))
        while self._busy and self._busy[0][0] < now - BUSY_WINDOW_S:
            self._busy.popleft()
        busy = sum(b[1] for b in self._busy) / max(1e-9, sum(b[2] for b in self._busy))
        epoch = self.current_epoch()
        hook.observe("sagewalk_train_step_seconds", result.seconds)
        hook.inc("sagewalk_train_examples_total", result.examples)
        hook.set("sagewalk_train_loss", result.loss)
        hook.set("sagewalk_learning_rate", result.lr)
        hook.set("sagewalk_trainer_busy_ratio", min(1.0, busy))
        hook.set("sagewalk_epoch", epoch + 1)
        hook.set("sagewalk_epoch_progress_ratio",
                 self.run_state.epoch_done.get(epoch, 0) / max(1, self.batches_in(epoch)))
        hook.set("sagewalk_curriculum_hard_negatives", self.hard_negatives(epoch))
        if self.trainer.step % 50 == 0 or self.trainer.step == 1:
            log.info("step %d epoch %d loss %.4f (easy %.4f hard %.4f) lr %.2e %.0f ex/s "
                     "busy %.2f", self.trainer.step, epoch + 1, result.loss, result.easy_loss,
                     result.hard_loss, result.lr, result.examples / max(1e-9, result.seconds),
                     busy)

    def _after_step(self) -> bool:
        """Validation, checkpoints and stop conditions; True ends the loop."""
        step, cfg = self.trainer.step, self.cfg
        if cfg.validate_every and step % cfg.validate_every == 0:
            self.validate()
            if self.validator.patience_spent:
                self.stop("early_stopping")
        if cfg.max_steps and step >= cfg.max_steps:
            self.stop("max_steps")
        if self._budget_last:
            log.info("step %d: time budget of %g s spent (%.1f s), lr %.3g", step,
                     cfg.time_budget_s, self.elapsed_seconds(), self.trainer.current_lr())
            self.run_state.budget_spent = True
            self.stop("time_budget")
        # One all-reduce decides for every rank: stop together, checkpoint at
        # the same step (the checkpoint gathers every rank's cursor).
        stop, save = distributed.consensus(
            self._stop.is_set(), time.time() - self.last_checkpoint >= cfg.checkpoint_every_s,
            self.device)
        if save:
            self.save_checkpoint()
        if stop and not self._stop.is_set():
            self.stop("another_rank")
        return stop

    def validate(self) -> dict | None:
        """A validation pass now (see Validator); its entry, None without pairs."""
        return self.validator.validate(self.trainer.embed, self.trainer.step)

    # -- the end ------------------------------------------------------------------
    def finish(self, *, export: bool = True) -> dict:
        """Final validation (unless stopped by a signal), checkpoint and model
        export (rank 0); the run's training figures."""
        trained = self.stop_reason in ("completed", "max_steps", "early_stopping", "time_budget")
        calibration = None
        if self.rank.is_main and self.trainer.step and trained and self._calibrates():
            calibration = self.calibrate_prior()
        validated = self.validator.validated_at(self.trainer.step) and calibration is None
        if (self.rank.is_main and self.cfg.validate_every and self.trainer.step and not validated
                and trained):
            self.validate()
        self.save_checkpoint()
        model_path = None
        if export and self.rank.is_main:
            model_path = str(export_model(
                self.run_dir, self.trainer.model, {"step": self.trainer.step},
                neighbourhoods=neighbourhood_settings(self.config.sampler)))
            log.info("model for serving: %s (gpu_consumer.model.load_model(run_dir))",
                     model_path)
        return {"steps": self.trainer.step, "examples": self.run_state.examples,
                "epochs_done": self.run_state.epochs_done(),
                "stop_reason": self.stop_reason, "validation": self.validator.history,
                **self.budget_figures(),
                "best_hit_rate": self.validator.best,
                "prior_calibration": calibration,
                "model_path": model_path,
                "device": str(self.device), "bf16": self.trainer.bf16,
                "world_size": self.rank.world_size}

    def _calibrates(self) -> bool:
        c = self.cfg
        return bool(c.calibrate_prior and c.candidate_prior and str(c.prior_source) == "degree"
                    and not c.prior_in_loss)

    def calibrate_prior(self) -> dict | None:
        """Set the degree prior's table to f·s·log(1 + degree), s the softmax's
        scale and f the factor the held-out pairs pick (Validator.calibrate_prior),
        so the exported model serves it; the search's figures, None without pairs.
        Idempotent: f scales the table computed from the store, not the current one."""
        import torch
        model = self.trainer.model
        scale = degree_scale(self.cfg.temperature, self.config.sampler.negative_distribution)
        beta = degree_prior(self.store, model.spec.item_type, scale)
        result = self.validator.calibrate_prior(self.trainer.embed, beta)
        if result is None:
            return None
        table = model.head.prior_table
        table.copy_(torch.from_numpy(beta * result["factor"]).to(table.device))
        model.spec = replace(model.spec, prior_scale=scale * result["factor"])
        return result

    def budget_figures(self) -> dict:
        """What run_summary.json says about the plan: the budget, the seconds
        trained, the last step's rate, and each epoch begun, complete or cut
        short (by the budget, max_steps or a signal)."""
        epochs = [{"epoch": e, "batches_done": n, "batches_planned": self.batches_in(e),
                   "complete": n >= self.batches_in(e)}
                  for e, n in sorted(self.run_state.epoch_done.items())]
        cut = [e for e in epochs if not e["complete"]]
        return {"time_budget_s": self.cfg.time_budget_s,
                "trained_seconds": round(self.elapsed_seconds(), 3),
                "lr_final": self.last_lr, "lr_planned_final": self.cfg.lr * self.cfg.min_lr_ratio,
                "epochs": epochs, "epochs_complete": sum(e["complete"] for e in epochs),
                "epoch_cut_short": cut[-1] if cut else None}
