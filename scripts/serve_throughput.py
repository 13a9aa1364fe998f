#!/usr/bin/env python3
"""Aggregate decode throughput of any OpenAI-compatible server (docs/perf.md).

C concurrent clients each send R /v1/completions requests (one fixed prompt,
greedy, --max-tokens, not streamed) to --url; the script reports the
completion tokens the server says it produced (usage.completion_tokens), the
wall time from the first request to the last answer, their ratio (aggregate
tokens/s) and the median and worst request latency. The same command against
`hearth serve` and against another server on the same model file compares
the two under the same load; run C = 1 first for the single-stream figure.

    scripts/serve_throughput.py --url http://127.0.0.1:8080 --clients 8 --requests 2
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse


def one_request(url: urllib.parse.ParseResult, body: bytes, key: str, timeout: float):
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = "Bearer " + key
    start = time.monotonic()
    try:
        conn.request("POST", "/v1/completions", body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    elapsed = time.monotonic() - start
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
    usage = json.loads(data).get("usage") or {}
    tokens = usage.get("completion_tokens")
    if not isinstance(tokens, int):
        raise RuntimeError(f"no usage.completion_tokens in the answer: {data[:200]!r}")
    return tokens, elapsed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    p.add_argument("--api-key", default="")
    p.add_argument("--model", default="", help="the model field of each request")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=2, help="per client, one after another")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt", default="The history of the city begins with")
    p.add_argument("--ignore-eos", action="store_true",
                   help="send ignore_eos: true (servers that know it generate max-tokens)")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    a = p.parse_args()
    if a.clients < 1 or a.requests < 1 or a.max_tokens < 1:
        p.error("--clients, --requests and --max-tokens must be at least 1")
    url = urllib.parse.urlparse(a.url)
    req = {"prompt": a.prompt, "max_tokens": a.max_tokens, "temperature": 0}
    if a.model:
        req["model"] = a.model
    if a.ignore_eos:
        req["ignore_eos"] = True
    body = json.dumps(req).encode()

    results: list[tuple[int, float]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client():
        for _ in range(a.requests):
            try:
                r = one_request(url, body, a.api_key, a.timeout)
            except Exception as e:  # reported below, the run counts as failed
                with lock:
                    errors.append(str(e))
                return
            with lock:
                results.append(r)

    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    tokens = sum(r[0] for r in results)
    lat = sorted(r[1] for r in results)
    out = {
        "url": a.url,
        "clients": a.clients,
        "requests": len(results),
        "errors": len(errors),
        "completion_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 3) if wall > 0 else 0.0,
        "latency_p50_s": round(statistics.median(lat), 3) if lat else None,
        "latency_max_s": round(lat[-1], 3) if lat else None,
    }
    if a.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")
    for e in errors[:5]:
        print("error:", e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
