"""The supervisor and real producer processes on a damaged store: a
deterministic failure stops the producers with the store's message (exit 2)
instead of a crash loop that burns the restart budget."""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import replace

import numpy as np
import pytest

from graphstore import build_from_arrays
from test_supervisor import make_config
from worker.control import ControlServer
from worker.supervisor import Slot, Supervisor, _exit_text


@pytest.fixture()
def store_path(tmp_path):
    rng = np.random.default_rng(5)
    build_from_arrays(tmp_path / "store",
                      edges={"rates": ("item", "user", rng.integers(0, 50, 400),
                                       rng.integers(0, 40, 400))},
                      node_counts={"item": 50, "user": 40})
    return tmp_path / "store"


def _config(tmp_path, store_path, **worker):
    """A config whose store is `store_path` (its producers get these sections)."""
    config = make_config(tmp_path, **worker)
    return replace(config, graphstore=replace(config.graphstore, path=str(store_path)))


def _run_until_it_stops(config, timeout=120.0, **kwargs):
    """Run a supervisor (real spawned producers) until it gives up by itself."""
    sup = Supervisor(config, **kwargs)
    control = ControlServer(config.worker.control_endpoint)
    result = {}
    thread = threading.Thread(target=lambda: result.update(status=sup.run(control)),
                              daemon=True)
    thread.start()
    thread.join(timeout)
    stopped = not thread.is_alive()
    if not stopped:
        sup.request_stop()
        thread.join(30)
    control.close()
    assert stopped, "the supervisor kept restarting producers on a damaged store"
    return sup, result["status"]


def test_producer_on_a_store_edited_in_place_is_not_restarted(tmp_path, store_path, caplog):
    indices = np.memmap(store_path / "edges/rates/forward/indices.bin", mode="r+",
                        dtype=np.uint16)
    indices[3] = 9999  # same size: opening passes, the structure check does not
    indices.flush()
    del indices
    config = _config(tmp_path, store_path, producers=2, restart_budget=50)
    with caplog.at_level(logging.INFO):
        sup, status = _run_until_it_stops(config)
    assert status == 2
    assert sup.total_restarts == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("not restarting" in m and "forward/indices.bin: entry 3 is 9999" in m
               and "sagewalk store verify" in m for m in errors), errors


def test_producer_killed_by_sigbus_is_named_and_not_restarted(tmp_path, store_path, caplog):
    config = _config(tmp_path, store_path, producers=1, restart_budget=50)
    with caplog.at_level(logging.INFO):
        sup, status = _run_until_it_stops(config, builder="damaged:truncating_builder",
                                          store_path=str(store_path))
    assert status == 2
    assert sup.total_restarts == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("killed by signal SIGBUS" in m and "truncated or rewritten in place" in m
               for m in errors), errors
    assert any("forward/indices.bin: 0 bytes, the manifest expects" in m
               and "not restarting" in m for m in errors), errors


def test_default_builder_checks_the_configured_store_others_none(tmp_path, store_path):
    config = _config(tmp_path, store_path)
    assert Supervisor(config).store_path == str(store_path)
    assert Supervisor(config, builder="synthetic:make_builder").store_path is None
    Supervisor(config)._check_store(Slot(0), -signal.SIGKILL)  # sound store: no raise


def test_exit_text_names_the_signal():
    assert _exit_text(-signal.SIGBUS) == "signal SIGBUS"
    assert _exit_text(1) == "status 1"


def test_store_truncated_under_streaming_producers_stops_the_run(tmp_path, store_path,
                                                                   caplog):
    """The whole path: real producers streaming batches to a trainer-side
    BatchStream, a store file cut short under them.  Whether a producer meets
    it at its next batch's fstat check (StoreError) or mid-batch (SIGBUS),
    the run stops with the file named and no restart."""
    import gc
    import os

    from gpu_consumer.stream import BatchStream, EpochPlan
    from graphstore import open_store
    from worker.assemble import BatchBuilder

    config = _config(tmp_path, store_path, producers=2, restart_budget=50)
    config = replace(config, sampler=replace(config.sampler, batch_size=4, num_layers=1,
                                             easy_negatives=4))
    builder = BatchBuilder(open_store(store_path), config.sampler, model=config.trainer.model)
    digest, batches = builder.digest, builder.num_batches(0)
    del builder
    gc.collect()  # unmapped here before the file is cut: this process never reads it again
    plan = EpochPlan(1000, num_batches=lambda e: batches, base_seed=3)
    sup = Supervisor(config)
    control = ControlServer(config.worker.control_endpoint)
    result = {}
    with caplog.at_level(logging.INFO), BatchStream(config.worker, digest=digest,
                                                    plan=plan) as stream:
        def supervise():
            result["status"] = sup.run(control)
            stream.close()  # ends the iteration below
        thread = threading.Thread(target=supervise, daemon=True)
        thread.start()
        watchdog = threading.Timer(120, stream.close)  # fail, never hang, if it keeps going
        watchdog.start()
        received = 0
        for tbatch in stream:
            stream.done(tbatch.ticket)
            received += 1
            if received == 5:
                os.truncate(store_path / "edges/rates/forward/indices.bin", 0)
        thread.join(60)
        watchdog.cancel()
    control.close()
    assert not thread.is_alive()
    assert received >= 5 and result["status"] == 2 and sup.total_restarts == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("not restarting" in m and "forward/indices.bin: 0 bytes, the manifest expects"
               in m for m in errors), errors
