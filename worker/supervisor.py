"""The `sagewalk sampler` daemon: keeps N producer processes alive.

Producers are started with the spawn context (a forked child would inherit
numba's and OpenMP's thread pools and any zmq context, none of which survive a
fork) after capping their thread counts in the environment.  The loop, every
0.1 s: restart crashed producers with exponential backoff within a restart
budget, apply a new producer count (SIGHUP re-reads the config file; `sagewalk
scale` talks to the control socket), keep the Prometheus file-SD list of
producer endpoints current.  SIGTERM/SIGINT drain: every producer finishes its
batch, hands back its tickets and exits 0; the supervisor then exits 0.

A producer that dies is restarted only if the store it maps is sound: after
any crash the supervisor checks the store (sizes and structure,
`Store.check_structure`).  A damaged store fails every producer the same
way, so restarting would only burn the restart budget: instead every
producer is stopped and the supervisor exits 2 with the store's own message
(which file, what is wrong, how to fix it).  A SIGBUS is named for what it
almost always is here, a mapped store file truncated under the producer.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol

from common.errors import ConfigError, SagewalkError
from graphstore.config import GraphstoreConfig
from monitoring import hook
from monitoring.config import MonitoringConfig
from sampler.config import SamplerConfig
from worker.config import WorkerConfig
from worker.producer import ProducerSpec, main as producer_main

log = logging.getLogger(__name__)

BUDGET_WINDOW_S = 600.0
BACKOFF_S = (0.2, 10.0)  # first delay, cap; doubles per consecutive crash
DEFAULT_BUILDER = "worker.producer:default_builder"

# What a producer killed by these signals most likely met.
_SIGNAL_CAUSES = {
    signal.SIGBUS: "it read a page of a memory-mapped file that is no longer there: a store "
                   "file was truncated or rewritten in place while mapped (or the disk failed)",
    signal.SIGSEGV: "an out-of-bounds read: a damaged store file, or a bug",
}


class SupervisorError(SagewalkError):
    """The producers cannot be kept running; `exit_status` is the daemon's exit code."""

    exit_status = 1


class StoreDamagedError(SupervisorError):
    """The producers' store is damaged: restarting them cannot help."""

    exit_status = 2


@dataclass
class Slot:
    index: int
    process: mp.process.BaseProcess | None = None
    crashes: int = 0          # consecutive, for the backoff
    start_at: float = 0.0
    retiring: bool = False
    metrics_port: int | None = None
    started: float = 0.0


class SupervisedConfig(Protocol):
    """The composed config (sagewalk.config.Config) as the supervisor reads it."""

    graphstore: GraphstoreConfig
    sampler: SamplerConfig
    worker: WorkerConfig
    monitoring: MonitoringConfig
    trainer: Any        # only its .model (a ModelKind): [trainer] is gpu_consumer's section


@dataclass
class Supervisor:
    """Keeps `config.worker.producers` producers alive, each given its frozen
    sections in a ProducerSpec.  `reload_config` returns the config read afresh
    (SIGHUP: its producer count is applied); None: SIGHUP changes nothing."""

    config: SupervisedConfig
    reload_config: Callable[[], SupervisedConfig] | None = None
    endpoint: str | None = None         # --connect; default worker.trainer_endpoint
    builder: str = DEFAULT_BUILDER
    store_path: str | None = None       # checked after a crash; default builder: graphstore.path
    name_prefix: str = field(default_factory=socket.gethostname)
    slots: list[Slot] = field(default_factory=list)
    restarts: deque = field(default_factory=deque)
    target: int = 0

    def __post_init__(self):
        self._ctx = mp.get_context("spawn")
        self._reports = self._ctx.Queue()
        self._stop = False
        self._reload = False
        self.target = self.config.worker.producers
        self.total_restarts = 0
        if self.store_path is None and self.builder == DEFAULT_BUILDER:
            self.store_path = str(self.config.graphstore.path)

    # -- signals -------------------------------------------------------------
    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.request_stop())
        signal.signal(signal.SIGINT, lambda *_: self.request_stop())
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_reload", True))

    def request_stop(self) -> None:
        self._stop = True

    # -- main loop -----------------------------------------------------------
    def run(self, control=None) -> int:
        """Supervise until asked to stop; 0 after a clean drain, 1 when the
        restart budget is spent, 2 when a producer died on a damaged store."""
        status = 0
        try:
            while not self._stop:
                if self._reload:
                    self._reload = False
                    self.reload()
                if control is not None:
                    control.serve(self)
                try:
                    self.step(time.monotonic())
                except SupervisorError as err:
                    log.error("%s", err)
                    status = err.exit_status
                    break
                time.sleep(0.1)
        finally:
            self.drain()
        return status

    def step(self, now: float) -> None:
        self._collect_reports()
        while len(self.slots) < self.target:
            self.slots.append(Slot(len(self.slots)))
        for slot in self.slots[self.target:]:
            if not slot.retiring and slot.process is not None and slot.process.is_alive():
                slot.retiring = True
                os.kill(slot.process.pid, signal.SIGTERM)
        for slot in self.slots:
            self._tend(slot, now)
        self.slots = [s for s in self.slots if s.index < self.target or self._alive(s)]
        alive = sum(self._alive(s) for s in self.slots)
        hook.set("sagewalk_producers_alive", alive)

    def _tend(self, slot: Slot, now: float) -> None:
        process = slot.process
        if process is not None and not process.is_alive():
            process.join()
            slot.process, slot.metrics_port = None, None
            self._write_sd()
            if slot.index >= self.target:
                log.info("producer %s retired (exit %s)", self._name(slot), process.exitcode)
                return
            self._check_store(slot, process.exitcode)
            slot.crashes = slot.crashes + 1 if now - slot.started < 60 else 1
            delay = min(BACKOFF_S[1], BACKOFF_S[0] * 2 ** (slot.crashes - 1))
            slot.start_at = now + delay
            self._count_restart(now)
            log.warning("producer %s exited with %s; restarting in %.1f s", self._name(slot),
                        _exit_text(process.exitcode), delay)
        if slot.process is None and slot.index < self.target and now >= slot.start_at:
            self._start(slot, now)

    def _check_store(self, slot: Slot, code: int | None) -> None:
        """After a crash: StoreDamagedError if the store is why (a
        deterministic failure), else return and let the restart go ahead."""
        if code is not None and -code in _SIGNAL_CAUSES:
            log.error("producer %s was killed by %s: %s", self._name(slot), _exit_text(code),
                      _SIGNAL_CAUSES[-code])
        if not self.store_path:
            return
        from graphstore import StoreError, open_store
        try:
            open_store(self.store_path).check_structure()
        except StoreError as err:
            raise StoreDamagedError(
                f"producer {self._name(slot)} exited with {_exit_text(code)} and its store is "
                f"damaged, so every restart would fail the same way: not restarting, "
                f"stopping all producers. {err}") from err

    def _count_restart(self, now: float) -> None:
        self.restarts.append(now)
        self.total_restarts += 1
        hook.inc("sagewalk_producer_restarts_total")
        while self.restarts and now - self.restarts[0] > BUDGET_WINDOW_S:
            self.restarts.popleft()
        budget = self.config.worker.restart_budget
        if len(self.restarts) > budget:
            raise SupervisorError(
                f"{len(self.restarts)} producer restarts in {BUDGET_WINDOW_S:.0f} s exceed "
                f"worker.restart_budget = {budget}; the producers keep crashing (see their "
                "log lines above); fix the cause or raise the budget")

    def _start(self, slot: Slot, now: float) -> None:
        threads = str(self.config.worker.threads_per_producer)
        # Thread pools size themselves from these at first use, in the child:
        # set them before the spawn so N producers x all cores do not
        # oversubscribe the machine.
        for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS"):
            os.environ[var] = threads
        process = self._ctx.Process(target=producer_main, name=self._name(slot),
                                    args=(self._spec(slot), self._reports), daemon=False)
        process.start()
        slot.process, slot.started, slot.retiring = process, now, False
        log.info("started producer %s (pid %d)", self._name(slot), process.pid)

    def _spec(self, slot: Slot) -> ProducerSpec:
        mon = self.config.monitoring
        port = None
        if mon.producer_base_port or mon.sd_file:
            port = mon.producer_base_port + slot.index if mon.producer_base_port else 0
        config = self.config
        return ProducerSpec(name=self._name(slot), endpoint=self.endpoint or
                            config.worker.trainer_endpoint, graphstore=config.graphstore,
                            sampler=config.sampler, worker=config.worker,
                            model=config.trainer.model, builder=self.builder,
                            metrics_host=mon.host, metrics_port=port, parent_pid=os.getpid())

    def _name(self, slot: Slot) -> str:
        return f"{self.name_prefix}-{slot.index}"

    def _alive(self, slot: Slot) -> bool:
        return slot.process is not None and slot.process.is_alive()

    # -- scaling and config --------------------------------------------------
    def scale(self, producers: int) -> None:
        if producers < 0:
            raise ValueError(f"producers must be >= 0, got {producers}")
        if producers != self.target:
            log.info("scaling producers %d -> %d", self.target, producers)
        self.target = producers

    def reload(self) -> None:
        """SIGHUP: re-read the config file and apply its producer count."""
        if self.reload_config is None:
            return
        try:
            config = self.reload_config()
        except ConfigError as err:
            log.error("SIGHUP: keeping the running config: %s", err)
            return
        self.config = replace(self.config, worker=replace(
            self.config.worker, producers=config.worker.producers))
        self.scale(config.worker.producers)

    def status(self) -> dict:
        return {"producers": self.target, "alive": sum(self._alive(s) for s in self.slots),
                "restarts": self.total_restarts,
                "pids": {self._name(s): s.process.pid for s in self.slots if self._alive(s)}}

    # -- metrics discovery ---------------------------------------------------
    def _collect_reports(self) -> None:
        changed = False
        while True:
            try:
                name, pid, port = self._reports.get_nowait()
            except queue.Empty:  # multiprocessing queues raise the stdlib's Empty
                break
            for slot in self.slots:
                if slot.process is not None and slot.process.pid == pid:
                    slot.metrics_port, changed = port, True
        if changed:
            self._write_sd()

    def _write_sd(self) -> None:
        path = self.config.monitoring.sd_file
        if not path:
            return
        from monitoring.discovery import write_sd_file
        host = self.config.monitoring.host
        # No target labels: the job name says "producer", and a `role` label
        # here would clash with sagewalk_build_info's own (Prometheus would
        # rename the scraped one exported_role).
        write_sd_file(path, [(host, s.metrics_port) for s in self.slots
                             if s.metrics_port and self._alive(s)])

    # -- shutdown ------------------------------------------------------------
    def drain(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every producer, wait for their drain, kill any that hang."""
        live = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for process in live:
            os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in live:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("producer %s did not drain in %.0f s; killing it", process.name,
                          timeout_s)
                process.kill()
                process.join()
        for slot in self.slots:
            slot.process = None
        self._write_sd()
        self._reports.close()
        self._reports.join_thread()


def _exit_text(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"status {code}"
