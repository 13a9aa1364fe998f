#!/usr/bin/env python3
"""Loopback load test for `hearth serve` (docs/serve.md, "Load test").

N concurrent clients send M requests in all (chat and completions, streamed
or, a fraction --whole of them, not; models picked at random from --models,
so adapters mix in one batch); a fraction --disconnect of them hang up,
after their first few chunks or before the whole answer. Then it
reports p50/p99 time to first token, per-token latency (the gap between
chunks), throughput, and checks:
  - lost 0: every request ended: [DONE] after one finish_reason per choice,
    or the intended disconnect; errors (429 included) count as lost;
  - duplicated 0: no response id seen twice, no chunk after [DONE];
  - hung 0: no request went past --request-timeout without a byte;
  - the engine settles: no waiting or running requests, every submitted
    request finished (/metrics);
  - the server's resident memory (with --server-pid, or the server this
    script starts) returns near its idle level.
Exit status 0 when every check holds.

Against a running server:
    scripts/serve_load.py --url http://127.0.0.1:8080 --api-key K --server-pid PID \\
        --models base,base+cardiology
or let it start one (port 0, loopback):
    scripts/serve_load.py --model tests/data/models/tiny-qwen2-f32.gguf \\
        --lora all=tests/data/lora/qwen2-all --clients 64 --requests 2000
Standard library only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def percentile(values, q):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


class Load:
    def __init__(self, args):
        self.args = args
        u = urllib.parse.urlparse(args.url)
        self.host, self.port = u.hostname, u.port
        self.models = args.models.split(",")
        self.lock = threading.Lock()
        self.next = 0
        self.rng = random.Random(args.seed)
        self.ids = set()
        self.outcomes = {"ok": 0, "disconnected": 0, "lost": 0, "duplicated": 0, "hung": 0}
        self.failures = []
        self.ttft = []
        self.gaps = []
        self.tokens = 0

    def headers(self):
        h = {"Content-Type": "application/json"}
        if self.args.api_key:
            h["Authorization"] = "Bearer " + self.args.api_key
        return h

    def metrics(self) -> dict[str, float]:
        req = urllib.request.Request(self.args.url + "/metrics", headers=self.headers())
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def take(self):
        with self.lock:
            if self.next >= self.args.requests:
                return None
            i = self.next
            self.next += 1
            r = random.Random(self.args.seed * 1000003 + i)
            return i, r

    def record(self, outcome, detail=None):
        with self.lock:
            self.outcomes[outcome] += 1
            if detail and len(self.failures) < 20:
                self.failures.append(detail)

    def claim(self, i, response_id) -> bool:
        """Records a response id; False (and a duplicate) when seen before."""
        with self.lock:
            if response_id not in self.ids:
                self.ids.add(response_id)
                return True
        self.record("duplicated", f"request {i}: id {response_id} seen before")
        return False

    def one(self, i, rng):
        chat = rng.random() < 0.5
        model = rng.choice(self.models)
        body = {"model": model, "max_tokens": self.args.max_tokens, "stream": True,
                "temperature": 0.8, "seed": i}
        if chat:
            body["messages"] = [{"role": "user", "content": f"Request {i}: tell me something."}]
            path = "/v1/chat/completions"
        else:
            body["prompt"] = f"Request {i}: once upon a time"
            path = "/v1/completions"
        disconnect_after = rng.randint(1, 3) if rng.random() < self.args.disconnect else None
        if rng.random() < self.args.whole:
            body["stream"] = False
            self.one_whole(i, path, body, disconnect_after is not None, rng)
            return
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.request_timeout)
        start = time.perf_counter()
        try:
            conn.request("POST", path, body=json.dumps(body), headers=self.headers())
            resp = conn.getresponse()
            if resp.status != 200:
                self.record("lost", f"request {i}: HTTP {resp.status} {resp.read()[:200]!r}")
                return
            seen_id = None
            finishes = 0
            done = False
            chunks = 0
            last = None
            first = None
            buf = b""
            while True:
                line = resp.readline()
                if not line:
                    break
                line = line.strip()
                if not line.startswith(b"data: "):
                    continue
                data = line[len(b"data: "):]
                if done:
                    self.record("duplicated", f"request {i}: a chunk after [DONE]")
                    return
                if data == b"[DONE]":
                    done = True
                    continue
                buf = data
                obj = json.loads(buf)
                if "error" in obj:
                    self.record("lost", f"request {i}: stream error {obj['error']}")
                    return
                if seen_id is None:
                    seen_id = obj["id"]
                    if not self.claim(i, seen_id):
                        return
                elif obj["id"] != seen_id:
                    self.record("duplicated", f"request {i}: two ids in one stream")
                    return
                for c in obj.get("choices", []):
                    text = c.get("text") if "text" in c else (c.get("delta") or {}).get("content")
                    if text:
                        now = time.perf_counter()
                        if first is None:
                            first = now
                            with self.lock:
                                self.ttft.append(now - start)
                        elif last is not None:
                            with self.lock:
                                self.gaps.append(now - last)
                        last = now
                        with self.lock:
                            self.tokens += 1
                    if c.get("finish_reason"):
                        finishes += 1
                chunks += 1
                if disconnect_after is not None and chunks >= disconnect_after:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                    resp.close()
                    conn.close()
                    self.record("disconnected")
                    return
            if done and finishes == 1:
                self.record("ok")
            elif finishes > 1:
                self.record("duplicated", f"request {i}: {finishes} finish reasons")
            else:
                self.record("lost", f"request {i}: stream ended without [DONE]/finish")
        except TimeoutError:
            self.record("hung", f"request {i}: no byte for {self.args.request_timeout} s")
        except OSError as e:
            self.record("lost", f"request {i}: {e!r}")
        finally:
            conn.close()

    def one_whole(self, i, path, body, disconnect, rng):
        """A non-streamed request; with `disconnect`, hang up before the answer."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.args.request_timeout)
        try:
            conn.request("POST", path, body=json.dumps(body), headers=self.headers())
            if disconnect:
                time.sleep(rng.uniform(0.0, 0.2))
                conn.sock.shutdown(socket.SHUT_RDWR)
                self.record("disconnected")
                return
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200:
                self.record("lost", f"request {i}: HTTP {resp.status} {data[:200]!r}")
                return
            obj = json.loads(data)
            if not self.claim(i, obj["id"]):
                return
            if len(obj["choices"]) == 1 and obj["choices"][0]["finish_reason"] in ("stop", "length"):
                self.record("ok")
            else:
                self.record("lost", f"request {i}: bad answer {data[:200]!r}")
        except TimeoutError:
            self.record("hung", f"request {i}: no answer in {self.args.request_timeout} s")
        except OSError as e:
            self.record("lost", f"request {i}: {e!r}")
        finally:
            conn.close()

    def client(self):
        while True:
            t = self.take()
            if t is None:
                return
            self.one(*t)

    def run(self) -> bool:
        a = self.args
        # Warm up (first graph plans, adapters), then the idle level.
        for m in self.models:
            self.request_once(m)
        time.sleep(0.5)
        idle = rss_bytes(a.server_pid) if a.server_pid else 0
        generated0 = self.metrics()["hearth_engine_generated_tokens_total"]
        t0 = time.perf_counter()
        threads = [threading.Thread(target=self.client) for _ in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        peak = rss_bytes(a.server_pid) if a.server_pid else 0

        settled = False
        deadline = time.time() + 30
        m = {}
        while time.time() < deadline:
            m = self.metrics()
            if (m["hearth_engine_queue_depth"] == 0 and m["hearth_engine_running_sequences"] == 0
                    and m["hearth_engine_requests_submitted_total"]
                    == m["hearth_engine_requests_finished_total"]):
                settled = True
                break
            time.sleep(0.2)
        # Memory returns near idle: within 25% or 64 MiB of it, whichever is more.
        after = 0
        mem_ok = True
        if a.server_pid:
            limit = max(idle * 1.25, idle + 64 * 2**20)
            deadline = time.time() + 15
            while True:
                after = rss_bytes(a.server_pid)
                if after <= limit or time.time() > deadline:
                    break
                time.sleep(0.5)
            mem_ok = after <= limit

        o = self.outcomes
        ms = lambda s: s * 1000  # noqa: E731
        print(f"requests {a.requests} clients {a.clients} wall {wall:.2f} s")
        print(f"ok {o['ok']} disconnected {o['disconnected']} lost {o['lost']} "
              f"duplicated {o['duplicated']} hung {o['hung']}")
        print(f"time to first token p50 {ms(percentile(self.ttft, 50)):.1f} ms "
              f"p99 {ms(percentile(self.ttft, 99)):.1f} ms")
        print(f"per-token latency p50 {ms(percentile(self.gaps, 50)):.1f} ms "
              f"p99 {ms(percentile(self.gaps, 99)):.1f} ms")
        generated = m.get("hearth_engine_generated_tokens_total", generated0) - generated0
        print(f"throughput {generated / wall:.1f} generated tokens/s ({generated:.0f} tokens; "
              f"{self.tokens} streamed text chunks)")
        disconnects = m.get('hearth_serve_completions_total{outcome="disconnected"}')
        print(f"engine settled {settled}: submitted "
              f"{m.get('hearth_engine_requests_submitted_total')} finished "
              f"{m.get('hearth_engine_requests_finished_total')} cancelled "
              f"{m.get('hearth_engine_requests_cancelled_total')}; server disconnects counted "
              f"{disconnects}")
        if a.server_pid:
            print(f"server RSS idle {idle / 2**20:.1f} MiB, after load {peak / 2**20:.1f} MiB, "
                  f"settled {after / 2**20:.1f} MiB ({'ok' if mem_ok else 'NOT near idle'})")
        for f in self.failures:
            print("  " + f)
        return (o["lost"] == 0 and o["duplicated"] == 0 and o["hung"] == 0 and settled
                and mem_ok and o["ok"] + o["disconnected"] == a.requests)

    def request_once(self, model):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        conn.request("POST", "/v1/completions", headers=self.headers(), body=json.dumps(
            {"model": model, "prompt": "warm up", "max_tokens": 4}))
        r = conn.getresponse()
        r.read()
        conn.close()
        if r.status != 200:
            raise SystemExit(f"warm-up request for {model} failed: HTTP {r.status}")


def start_server(args):
    cmd = [args.hearth, "serve", "-m", args.model, "--port", "0",
           "--n-seq", str(args.n_seq), "--max-queue", str(max(64, args.clients * 2))]
    for spec in args.lora:
        cmd += ["--lora", spec]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.fullmatch(r"listening on (http://\S+)\n", line)
    if not m:
        proc.kill()
        raise SystemExit(f"hearth serve did not start: {line!r}")
    names = [args.model.rsplit("/", 1)[-1].removesuffix(".gguf")]
    names += [names[0] + "+" + s.split("=", 1)[0] for s in args.lora]
    return proc, m.group(1), ",".join(names)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a running server (else --model starts one)")
    p.add_argument("--api-key", default="")
    p.add_argument("--server-pid", type=int, default=0, help="its pid, for the memory check")
    p.add_argument("--models", default="", help="model ids to mix, comma-separated")
    p.add_argument("--model", help="start `hearth serve -m MODEL` on a free loopback port")
    p.add_argument("--lora", action="append", default=[], help="NAME=DIR for the started server")
    p.add_argument("--hearth", default="build/bin/hearth")
    p.add_argument("--n-seq", type=int, default=8)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--disconnect", type=float, default=0.1, help="fraction that hang up")
    p.add_argument("--whole", type=float, default=0.2,
                   help="fraction sent without streaming (their disconnects hang up before "
                   "the answer)")
    p.add_argument("--max-tokens", type=int, default=32)
    p.add_argument("--request-timeout", type=float, default=120.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    proc = None
    if not args.url:
        if not args.model:
            p.error("give --url or --model")
        proc, args.url, models = start_server(args)
        args.server_pid = proc.pid
        args.models = args.models or models
    if not args.models:
        p.error("give --models (ids from GET /v1/models)")
    try:
        ok = Load(args).run()
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
