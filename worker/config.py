"""[worker]: producer processes, the sampler supervisor and the transport."""

from __future__ import annotations

from dataclasses import dataclass

from common.schema import positive, setting


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    producers: int = setting(2, "Producer processes the sampler daemon keeps running; change "
                             "it and send SIGHUP, or use `sagewalk scale`.", check=positive)
    trainer_endpoint: str = setting(
        "ipc:///tmp/sagewalk-trainer.sock", "ZeroMQ endpoint the trainer binds and producers "
        "connect to (ipc:// on one host, tcp://127.0.0.1:PORT across processes).")
    control_endpoint: str = setting(
        "ipc:///tmp/sagewalk-sampler-control.sock", "Control socket of the sampler daemon "
        "(used by `sagewalk scale`).")
    credits: int = setting(8, "Batches in flight per producer (credit-based flow control); "
                           "it hides the round trip, and bounds memory at credits x batch "
                           "size per producer.", check=positive)
    heartbeat_s: float = setting(0.5, "Seconds between heartbeats in each direction.",
                                 check=positive)
    liveness_s: float = setting(2.5, "A peer silent this long is declared dead and its "
                                "tickets are reissued; checked every heartbeat_s/2 at most, "
                                "so the default notices a hung producer within 3 s.",
                                check=positive)
    threads_per_producer: int = setting(1, "Numba/BLAS threads in each producer process.",
                                        check=positive)
    max_message_bytes: int = setting(256 << 20, "Largest batch message the trainer accepts "
                                     "(a PinSage batch of 512 pairs with 100k 384-d float16 "
                                     "input rows is ~80 MB); larger ones are rejected as "
                                     "'oversize'.", check=positive)
    restart_budget: int = setting(10, "Producer restarts allowed per 10 minutes before the "
                                  "supervisor gives up.", check=positive)
    curve_keys_dir: str = setting("", "Directory with CURVE keys (`sagewalk keys generate`); "
                                  "required for tcp:// binds beyond loopback.")
    audit_log: str = setting("", "Append one line per accepted batch ('epoch batch producer') "
                             "to this file, so a run can be audited ticket by ticket; empty "
                             "disables.")

    def relations(self):
        # The liveness check runs every heartbeat_s/2, so a peer must be able to
        # miss one heartbeat (scheduling jitter) without being declared dead.
        if self.liveness_s < 2 * self.heartbeat_s:
            yield "liveness_s", (f"must be >= 2 x worker.heartbeat_s "
                                 f"({self.heartbeat_s!r}), so one late heartbeat is not a death")
