"""ZeroMQ sockets for the producer <-> trainer link, configured in one place.

Every socket gets an explicit LINGER (the default, -1, makes a process with
unsent messages hang at exit), ZMTP heartbeats (so a dead TCP peer is noticed
by ZeroMQ itself) and, on the trainer, ZMQ_MAXMSGSIZE.  tcp:// links use CURVE
when a keys directory is configured (`sagewalk keys generate`); a tcp bind
beyond loopback without keys is refused, so nothing is ever exposed in clear.

Keys directory layout (ZeroMQ certificate files):
    trainer.key, trainer.key_secret     the trainer's (server) keypair
    producer.key, producer.key_secret   the producers' (client) keypair
    authorized/                         public keys the trainer accepts
"""

from __future__ import annotations

import ipaddress
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common.errors import SagewalkError

log = logging.getLogger(__name__)

LINGER_MS = 1000  # long enough to flush a goodbye, short enough never to hang exit


class TransportError(SagewalkError):
    """A socket could not be set up as configured."""


@dataclass(frozen=True)
class CurveKeys:
    public: bytes
    secret: bytes
    server_public: bytes | None  # clients: the trainer's public key
    authorized_dir: Path | None  # server: public keys of allowed clients


def is_tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


def is_loopback(endpoint: str) -> bool:
    host = urlsplit(endpoint).hostname or ""
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def generate_keys(directory: str | Path) -> list[Path]:
    """Write trainer and producer keypairs plus authorized/producer.key."""
    import zmq.auth

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("trainer", "producer"):
        public, secret = zmq.auth.create_certificates(str(directory), name)
        os.chmod(secret, 0o600)
        written += [Path(public), Path(secret)]
    authorized = directory / "authorized"
    authorized.mkdir(exist_ok=True)
    (authorized / "producer.key").write_bytes((directory / "producer.key").read_bytes())
    written.append(authorized / "producer.key")
    return written


def load_keys(directory: str | Path, role: str) -> CurveKeys:
    """Keys for `role` ('trainer' or 'producer') from a generated directory."""
    import zmq.auth

    directory = Path(directory)
    secret_file = directory / f"{role}.key_secret"
    try:
        public, secret = zmq.auth.load_certificate(str(secret_file))
        if role == "trainer":
            return CurveKeys(public, secret, None, directory / "authorized")
        server_public, _ = zmq.auth.load_certificate(str(directory / "trainer.key"))
        return CurveKeys(public, secret, server_public, None)
    except (OSError, ValueError) as err:
        raise TransportError(f"CURVE keys in {directory}: cannot load {role} keys ({err}); "
                             "create them with `sagewalk keys generate DIR` and copy DIR "
                             "to every host") from err


def keys_for(endpoint: str, keys_dir: str, role: str, *, binding: bool) -> CurveKeys | None:
    """CURVE keys to use on `endpoint`, or None for ipc/inproc/unkeyed loopback."""
    if not is_tcp(endpoint):
        return None
    if keys_dir:
        return load_keys(keys_dir, role)
    if binding and not is_loopback(endpoint):
        raise TransportError(
            f"worker.trainer_endpoint = {endpoint!r} binds beyond loopback without "
            "authentication; set worker.curve_keys_dir (see `sagewalk keys generate`) "
            "or bind 127.0.0.1")
    return None


def _common(sock, worker_cfg) -> None:
    import zmq

    sock.setsockopt(zmq.LINGER, LINGER_MS)
    sock.setsockopt(zmq.HEARTBEAT_IVL, int(worker_cfg.heartbeat_s * 1000))
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(worker_cfg.liveness_s * 1000))
    sock.setsockopt(zmq.HEARTBEAT_TTL, int(worker_cfg.liveness_s * 1000))


def router(ctx, worker_cfg, endpoint: str):
    """The trainer's ROUTER, bound; returns (socket, authenticator or None)."""
    import zmq

    keys = keys_for(endpoint, worker_cfg.curve_keys_dir, "trainer", binding=True)
    sock = ctx.socket(zmq.ROUTER)
    _common(sock, worker_cfg)
    # ZeroMQ applies this per frame and drops the connection of a peer that
    # exceeds it; the decoder then checks the whole message against the same
    # limit and counts an oversize one, so both bounds hold.
    sock.setsockopt(zmq.MAXMSGSIZE, worker_cfg.max_message_bytes)
    # A restarted producer reuses its identity; hand the route to the new
    # connection instead of dropping its messages as a clash.
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
    auth = None
    if keys is not None:
        from zmq.auth.thread import ThreadAuthenticator
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve(domain="*", location=str(keys.authorized_dir))
        sock.curve_server = True
        sock.curve_publickey, sock.curve_secretkey = keys.public, keys.secret
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as err:
        sock.close(0)
        if auth is not None:
            auth.stop()
        raise TransportError(f"cannot bind trainer endpoint {endpoint!r}: {err}; is another "
                             "trainer running? set worker.trainer_endpoint") from err
    return sock, auth


def dealer(ctx, worker_cfg, endpoint: str, identity: str):
    """A producer's DEALER, connected with a stable identity."""
    import zmq

    keys = keys_for(endpoint, worker_cfg.curve_keys_dir, "producer", binding=False)
    sock = ctx.socket(zmq.DEALER)
    _common(sock, worker_cfg)
    sock.setsockopt(zmq.IDENTITY, identity.encode())
    # Queue only to live connections: a send with no trainer fails fast
    # (EAGAIN) instead of piling batches up for a peer that may never return.
    sock.setsockopt(zmq.IMMEDIATE, 1)
    sock.setsockopt(zmq.SNDHWM, max(8, 2 * worker_cfg.credits + 4))
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    if keys is not None:
        sock.curve_publickey, sock.curve_secretkey = keys.public, keys.secret
        sock.curve_serverkey = keys.server_public
    sock.connect(endpoint)
    return sock
