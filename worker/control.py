"""The sampler daemon's control socket: `sagewalk scale` and status queries.

A REP socket bound on `worker.control_endpoint`, served between supervisor
steps (never blocking them).  Requests and replies are msgpack maps:

    {"cmd": "scale", "producers": 4}  ->  {"ok": true, "producers": 4, ...}
    {"cmd": "status"}                 ->  {"ok": true, "producers": 2, "alive": 2, ...}
"""

from __future__ import annotations

import logging

import msgpack

from common.errors import SagewalkError

log = logging.getLogger(__name__)


class ControlError(SagewalkError):
    """The sampler daemon could not be reached or refused the request."""


class ControlServer:
    def __init__(self, endpoint: str):
        import zmq

        from worker.transport import LINGER_MS, is_loopback, is_tcp

        if is_tcp(endpoint) and not is_loopback(endpoint):
            raise ControlError(f"worker.control_endpoint = {endpoint!r}: the control socket "
                               "is unauthenticated, so it binds loopback or ipc:// only")
        self._ctx = zmq.Context()
        self.sock = self._ctx.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, LINGER_MS)
        self.sock.setsockopt(zmq.MAXMSGSIZE, 4096)
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as err:
            self.close()
            raise ControlError(f"cannot bind the control socket {endpoint!r}: {err}; is "
                               "another sampler daemon running? set worker.control_endpoint")\
                from err

    def serve(self, supervisor) -> None:
        import zmq

        while self.sock.poll(0):
            raw = self.sock.recv()
            try:
                reply = self._handle(supervisor, msgpack.unpackb(raw))
            except Exception as err:  # a bad request must never take the daemon down
                reply = {"ok": False, "error": f"bad request: {err}"}
            self.sock.send(msgpack.packb(reply), zmq.NOBLOCK)

    @staticmethod
    def _handle(supervisor, request) -> dict:
        cmd = request.get("cmd") if isinstance(request, dict) else None
        if cmd == "scale":
            n = request.get("producers")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                return {"ok": False, "error": f"producers must be an integer >= 0, got {n!r}"}
            supervisor.scale(n)
        elif cmd != "status":
            return {"ok": False, "error": f"unknown command {cmd!r}; expected scale or status"}
        return {"ok": True, **supervisor.status()}

    def close(self) -> None:
        self.sock.close()
        self._ctx.term()


def request(endpoint: str, message: dict, timeout_s: float = 5.0) -> dict:
    """Send one request to a sampler daemon and return its reply."""
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb(message))
        if not sock.poll(int(timeout_s * 1000)):
            raise ControlError(f"no sampler daemon answered on {endpoint!r} within "
                               f"{timeout_s:.0f} s; is `sagewalk sampler` running with the "
                               "same worker.control_endpoint?")
        reply = msgpack.unpackb(sock.recv())
    finally:
        sock.close()
        ctx.term()
    if not reply.get("ok"):
        raise ControlError(f"the sampler daemon refused {message}: {reply.get('error')}")
    return reply
