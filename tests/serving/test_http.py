import json
import urllib.error
import urllib.request

import numpy as np
import pytest

from serving.http import make_server, serve_in_thread
from serving.index import RelatedItems, build_index


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    v = np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 3]] + 0.01 * np.arange(6)[:, None]
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    np.save(d / "embeddings.npy", v.astype(np.float32))
    (d / "ids.txt").write_text("a\nb\nc\nd\ne\nf &x\n")
    build_index(d, d, titles=["A", "B", "C", "D", "E", "F"])
    server = make_server(RelatedItems(d), "127.0.0.1", 0)
    serve_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_related_and_healthz(base_url):
    status, body = _get(f"{base_url}/related?id=a&k=1")
    assert status == 200
    assert body["title"] == "A" and body["related"][0]["id"] == "b"
    assert body["related"][0]["title"] == "B"
    status, body = _get(f"{base_url}/related?id=f%20%26x&k=2")
    assert status == 200 and body["id"] == "f &x" and len(body["related"]) == 2
    assert _get(f"{base_url}/healthz") == (200, {"status": "ok", "items": 6, "index": "exact"})


@pytest.mark.parametrize("query,status,fragment", [
    ("id=zzz", 404, "unknown id 'zzz'"),
    ("k=3", 400, "missing parameter id"),
    ("id=a&k=0", 400, "between 1 and"),
    ("id=a&k=ten", 400, "must be an integer"),
    ("id=a&id=b", 400, "given 2 times"),
    ("id=a&colour=red", 400, "unknown parameter 'colour'"),
    ("id=a&context=u1", 400, "no contextual model"),
])
def test_errors_are_clear_4xx(base_url, query, status, fragment):
    got_status, body = _get(f"{base_url}/related?{query}")
    assert got_status == status and fragment in body["error"]


def test_unknown_path_is_404(base_url):
    status, body = _get(f"{base_url}/nothing")
    assert status == 404 and "/related" in body["error"]
