"""The serving profile's sample buckets."""

from __future__ import annotations

from bench import profile_serve

RAW = """\
process 1:"recsys serve";thread (0x1);run (uvicorn/server.py:86);send (uvicorn/protocols/http/httptools_impl.py:522) 40
thread (0x1);run (uvicorn/server.py:86);__call__ (recsys/service/observability.py:230);log (logging/__init__.py:1500);dumps (json/encoder.py:200) 7
thread (0x2);_loop (service/batcher.py:224);recommend_batch (service/recommender.py:275);predict (artifacts/heads.py:64) 30
thread (0x2);_loop (recsys/service/batcher.py:224);search (recsys/index/searcher.py:120) 2
thread (0x2);_loop (service/batcher.py:177);get (queue.py:180) 3
thread (0x1);handle (starlette/routing.py:289);validate_python (pydantic/type_adapter.py:410) 12
thread (0x1);handle (starlette/routing.py:289);render (fastapi/routing.py:400);dumps (json/encoder.py:200) 5
thread (0x1);main (somewhere.py:1) 1
"""


def test_samples_go_to_the_stack_bucket_first_then_the_deepest_frame():
    counts = profile_serve.parse_raw(RAW)
    assert counts == {"HTTP protocol, event loop": 40, "access log": 7, "model: towers, index, heads": 32,
                      "batcher hand-off": 3,
                      "pydantic validation": 12, "JSON encode/decode": 5, "other": 1}
