"""`sagewalk serve`: related items over HTTP (stdlib http.server).

    GET /related?id=ITEM&k=10[&context=CTX]  -> {"id", "title", "k", "related": [{id, title, score}]}
    GET /healthz                             -> {"status": "ok", "items": n, "index": kind}

Errors are JSON too: 400 for a bad parameter, 404 for an unknown id or path,
each with a message saying what was wrong and what is expected.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from serving.index import ItemIndexError, RelatedItems, UnknownItem

log = logging.getLogger(__name__)

MAX_K = 1000


class _BadRequest(Exception):
    pass


def _params(query: str) -> dict[str, str]:
    parsed = parse_qs(query, keep_blank_values=True)
    for name, values in parsed.items():
        if len(values) > 1:
            raise _BadRequest(f"parameter {name!r} given {len(values)} times; give it once")
    return {name: values[0] for name, values in parsed.items()}


def _k(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    try:
        k = int(raw)
    except ValueError:
        raise _BadRequest(f"k must be an integer between 1 and {MAX_K}, got {raw!r}") from None
    if not 1 <= k <= MAX_K:
        raise _BadRequest(f"k must be between 1 and {MAX_K}, got {k}")
    return k


class RelatedHandler(BaseHTTPRequestHandler):
    server_version = "sagewalk"
    related: RelatedItems          # set on the subclass by make_server
    contextual = None              # serving.contextual.ContextualRanker or None
    default_k = 10

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        try:
            if url.path == "/healthz":
                self._send(200, {"status": "ok", "items": len(self.related.ids),
                                 "index": self.related.info.kind})
            elif url.path == "/related":
                self._send(200, self._related(_params(url.query)))
            else:
                self._send(404, {"error": f"no such path {url.path!r}; try /related?id=...&k=10 "
                                 "or /healthz"})
        except _BadRequest as err:
            self._send(400, {"error": str(err)})
        except UnknownItem as err:
            self._send(404, {"error": str(err)})
        except ItemIndexError as err:
            self._send(400, {"error": str(err)})

    def _related(self, params: dict[str, str]) -> dict:
        unknown = sorted(set(params) - {"id", "k", "context"})
        if unknown:
            raise _BadRequest(f"unknown parameter {unknown[0]!r}; expected id, k, context")
        item = params.get("id")
        if not item:
            raise _BadRequest("missing parameter id: /related?id=ITEM_ID&k=10")
        k = _k(params.get("k"), self.default_k)
        context = params.get("context")
        if context is not None:
            if self.contextual is None:
                raise _BadRequest("context given but this server has no contextual model "
                                  "(start `sagewalk serve` with --run and --embed-dir of a "
                                  "MultiSage run)")
            hits = self.contextual.related(item, context, k)
        else:
            hits = self.related.related(item, k)
        row = self.related.lookup(item)
        return {"id": item, "title": self.related.title(row), "k": k, "context": context,
                "related": [{"id": h.id, "title": h.title, "score": round(h.score, 6)}
                            for h in hits]}

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt: str, *args) -> None:
        log.info("%s %s", self.address_string(), fmt % args)


def make_server(related: RelatedItems, host: str = "127.0.0.1", port: int = 8750, *,
                default_k: int = 10, contextual=None) -> ThreadingHTTPServer:
    """A server bound to host:port (port 0 picks a free one); call serve_forever()."""
    handler = type("Handler", (RelatedHandler,), {"related": related, "default_k": default_k,
                                                  "contextual": contextual})
    return ThreadingHTTPServer((host, port), handler)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="sagewalk-serve", daemon=True)
    thread.start()
    return thread
