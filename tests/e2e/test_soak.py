"""Soak: `sagewalk up` on a synthetic store for a long time, with a producer
killed (kill -9) and restarted by the supervisor every minute.

    SAGEWALK_SOAK_S=1800 SAGEWALK_SOAK_KILL_EVERY_S=60 \
        pytest -m slow tests/e2e/test_soak.py -s

Duration and kill interval are environment variables so the same test runs
short (a few minutes) or for the full 30 minutes recorded in
benchmarks/RESULTS.md.  Checked at the end: no batch accepted twice, no batch
of a finished epoch missing (nothing lost), and the RSS of the trainer and of
a producer that is never killed grew less than 5% between the end of the
warm-up (the first fifth of the run) and the end.  The figures are printed as
one JSON line (`soak:`) and written to $SAGEWALK_SOAK_REPORT when it is set.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from collections import Counter
from pathlib import Path

import pytest
from common import procstat
from procs import alive, children, cmdline
from test_faults import Daemons

DURATION_S = float(os.environ.get("SAGEWALK_SOAK_S", "180"))
KILL_EVERY_S = float(os.environ.get("SAGEWALK_SOAK_KILL_EVERY_S", "60"))
SAMPLE_EVERY_S = 5.0


def rss_bytes(pid: int) -> int:
    return procstat.rss_bytes(pid)


def soak_config(daemons: Daemons) -> None:
    """The fault tests' config, checkpointing every 10 s (not 0.5 s) and with a
    restart budget the planned kills cannot spend; heartbeats at the defaults."""
    daemons.write_config(producers=3, epochs=1_000_000)
    text = daemons.config.read_text()
    text = text.replace("checkpoint_every_s = 0.5", "checkpoint_every_s = 10.0")
    text = text.replace("heartbeat_s = 0.2\nliveness_s = 1.5",
                        "heartbeat_s = 0.5\nliveness_s = 2.5\nrestart_budget = 1000")
    daemons.config.write_text(text)


def batches_per_epoch(daemons: Daemons, epoch: int) -> int:
    from graphstore import open_store
    from sagewalk.config import load
    from worker.assemble import BatchBuilder
    builder = BatchBuilder(open_store(daemons.tmp / "store"), load(daemons.config).sampler)
    return builder.num_batches(epoch)


def growth(samples: list[int], warm: int) -> tuple[int, int, float]:
    """(RSS at the end of the warm-up, RSS at the end, relative growth); each
    the median of 5 samples so one transient allocation does not decide it."""
    start = statistics.median(samples[warm:warm + 5])
    end = statistics.median(samples[-5:])
    return int(start), int(end), end / start - 1.0


@pytest.mark.slow
def test_soak_up_with_producers_killed_every_minute(tmp_path):
    daemons = Daemons(tmp_path, producers=3)
    soak_config(daemons)
    try:
        _soak(daemons)
    finally:
        daemons.cleanup()


def _soak(daemons: Daemons) -> None:
    up = daemons.start("up")
    daemons.wait_for(lambda: daemons.text().count("joined (3 connected)") >= 1
                     and len(daemons.audit()) >= 20, 120, "3 producers joined, 20 batches")
    trainer = next(p for p in children(up.pid) if b"trainer" in cmdline(p))
    sampler = next(p for p in children(up.pid) if b"sampler" in cmdline(p))

    def producers() -> list[int]:
        return [p for p in children(sampler) if b"spawn_main" in cmdline(p)
                and b"resource_tracker" not in cmdline(p)]

    steady = min(producers())  # never killed: its RSS is the producers' figure
    trainer_rss, producer_rss, kills = [], [], 0
    started = time.monotonic()
    next_kill = started + KILL_EVERY_S
    while (now := time.monotonic()) < started + DURATION_S:
        assert up.poll() is None, f"sagewalk up exited {up.returncode}:\n{daemons.text()[-3000:]}"
        assert alive(steady), "the producer that is never killed died"
        trainer_rss.append(rss_bytes(trainer))
        producer_rss.append(rss_bytes(steady))
        if now >= next_kill:
            victims = sorted(p for p in producers() if p != steady)
            if victims:
                os.kill(victims[kills % len(victims)], signal.SIGKILL)
                kills += 1
            next_kill += KILL_EVERY_S
        time.sleep(min(SAMPLE_EVERY_S, max(0.0, next_kill - time.monotonic())))
    up.send_signal(signal.SIGTERM)
    assert up.wait(120) == 0, daemons.text()[-3000:]

    keys = daemons.audit()
    summary = daemons.summary()
    from gpu_consumer.checkpoint import load_latest
    cursor = load_latest(daemons.tmp / "run")["cursor"]
    finished = range(int(cursor["epoch"]))
    accepted = set(keys)
    missing = [(e, b) for e in finished for b in range(batches_per_epoch(daemons, e))
               if (e, b) not in accepted]
    duplicated = [k for k, n in Counter(keys).items() if n > 1]
    warm = len(trainer_rss) // 5
    t0, t1, tg = growth(trainer_rss, warm)
    p0, p1, pg = growth(producer_rss, warm)
    figures = {
        "duration_s": round(DURATION_S), "kill_every_s": KILL_EVERY_S, "kills": kills,
        "batches_accepted": len(keys), "epochs_finished": len(finished),
        "lost": len(missing), "duplicates_in_audit": len(duplicated),
        "duplicates_rejected": summary["duplicates"], "gaps_reissued": summary["gaps"],
        "producer_restarts": summary["producer_restarts"],
        "trainer_rss_mb": [round(t0 / 2**20, 1), round(t1 / 2**20, 1)],
        "trainer_rss_growth": round(tg, 4),
        "producer_rss_mb": [round(p0 / 2**20, 1), round(p1 / 2**20, 1)],
        "producer_rss_growth": round(pg, 4), "stop_reason": summary["stop_reason"]}
    print("soak:", json.dumps(figures))
    if report := os.environ.get("SAGEWALK_SOAK_REPORT"):
        Path(report).write_text(json.dumps(figures, indent=2) + "\n")
    assert kills >= max(1, int(DURATION_S // KILL_EVERY_S) - 1), figures
    assert not duplicated and summary["duplicates"] == 0, figures
    assert not missing, f"batches of finished epochs never accepted: {missing[:10]}"
    assert summary["producer_restarts"] >= kills, figures
    assert tg < 0.05 and pg < 0.05, figures
