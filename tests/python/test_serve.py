"""`hearth serve` through the official `openai` client (and raw HTTP where
the client cannot go): chat, completions, streaming, stop strings, seeds,
logprobs, adapter selection by model id, /v1/models, /health, /metrics,
errors in OpenAI's shape, a client that disconnects mid-stream, garbage on
the socket, and the loopback load test (scripts/serve_load.py) at small size.

The server is the built `hearth` binary (build/bin/hearth, or $HEARTH_BIN)
on the tiny qwen2 model with the qwen2-all LoRA fixture, on a free loopback
port (--port 0; the test reads its "listening on" line).
"""

from __future__ import annotations

import http.client
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import QWEN2, ROOT

openai = pytest.importorskip("openai")

HEARTH = pathlib.Path(os.environ.get("HEARTH_BIN", ROOT / "build" / "bin" / "hearth"))
LORA = ROOT / "tests" / "data" / "lora" / "qwen2-all"
KEY = "test-key-0123456789"
BASE = QWEN2.stem  # the model's id: the file's name
TUNED = BASE + "+all"
MAX_BODY = 64 * 1024
CONVERSATION = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name three colours."},
]

pytestmark = pytest.mark.skipif(not HEARTH.exists(), reason=f"{HEARTH} is not built")


class Server:
    def __init__(self, *extra: str, model: pathlib.Path = QWEN2, lora: bool = True):
        adapters = ["--lora", f"all={LORA}"] if lora else []
        self.proc = subprocess.Popen(
            [str(HEARTH), "serve", "-m", str(model), *adapters, "--port", "0",
             "--api-key", KEY, "--max-body", str(MAX_BODY), "--max-tokens-limit", "400",
             "--n-seq", "4", "--threads", "2", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._first_line(60)
        m = re.fullmatch(r"listening on http://([^ ]+):(\d+)\n", line)
        assert m, f"unexpected first line {line!r}; stderr: {self.stderr_so_far()}"
        self.host, self.port = m.group(1), int(m.group(2))
        self.url = f"http://{self.host}:{self.port}"

    def _first_line(self, timeout: float) -> str:
        got = []
        reader = threading.Thread(target=lambda: got.append(self.proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        return got[0] if got else ""

    def stderr_so_far(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def client(self, key: str = KEY) -> "openai.OpenAI":
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=60)

    def get(self, path: str, key: str | None = KEY) -> tuple[int, str]:
        return self.raw("GET", path, None, key)

    def raw(self, method: str, path: str, body: bytes | None, key: str | None = KEY,
            headers: dict | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        if body is not None:
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8")
        conn.close()
        return resp.status, data

    def metrics(self) -> dict[str, float]:
        status, text = self.get("/metrics")
        assert status == 200
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    assert s.stop() == 0, s.stderr_so_far()


def chat(client, **kw):
    args = dict(model=BASE, messages=CONVERSATION, max_tokens=12, temperature=0)
    args.update(kw)
    return client.chat.completions.create(**args)


def complete(client, **kw):
    args = dict(model=BASE, prompt="Once upon a time", max_tokens=12, temperature=0)
    args.update(kw)
    return client.completions.create(**args)


# -- the API through the official client ---------------------------------------------------


def test_models_lists_base_and_adapters(server):
    ids = [m.id for m in server.client().models.list().data]
    assert ids == [BASE, TUNED]
    assert server.client().models.retrieve(TUNED).id == TUNED
    with pytest.raises(openai.NotFoundError):
        server.client().models.retrieve(BASE + "+nope")


def test_chat(server):
    r = chat(server.client())
    assert r.object == "chat.completion" and r.model == BASE
    (choice,) = r.choices
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 12
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_completions(server):
    r = complete(server.client(), max_tokens=7)
    assert r.object == "text_completion"
    assert isinstance(r.choices[0].text, str)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 7


def test_streaming_equals_whole_answer(server):
    client = server.client()
    whole = chat(client, max_tokens=20).choices[0].message.content
    chunks = list(chat(client, max_tokens=20, stream=True,
                       stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1

    whole = complete(client, max_tokens=20).choices[0].text
    text = "".join(c.choices[0].text for c in complete(client, max_tokens=20, stream=True))
    assert text == whole


def test_stream_is_valid_utf8_sse(server):
    body = json.dumps({"model": BASE, "prompt": "\u00e9\u4e2d\U0001F600", "max_tokens": 60,
                       "stream": True, "seed": 5}).encode()
    status, text = server.raw("POST", "/v1/completions", body)  # decode("utf-8") would raise
    assert status == 200
    events = [e for e in text.split("\n\n") if e and not e.startswith(":")]
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        assert e.startswith("data: ")
        json.loads(e[len("data: "):])


def test_same_seed_same_text(server):
    client = server.client()
    a = chat(client, temperature=1.0, seed=1234, max_tokens=24).choices[0].message.content
    b = chat(client, temperature=1.0, seed=1234, max_tokens=24).choices[0].message.content
    assert a == b
    others = {chat(client, temperature=1.0, seed=s, max_tokens=24).choices[0].message.content
              for s in (1, 2, 3)}
    assert len(others | {a}) > 1


def test_n_choices_use_consecutive_seeds(server):
    client = server.client()
    r = complete(client, temperature=1.0, seed=77, n=3, max_tokens=10)
    assert [c.index for c in r.choices] == [0, 1, 2]
    for i, c in enumerate(r.choices):
        alone = complete(client, temperature=1.0, seed=77 + i, max_tokens=10).choices[0].text
        assert c.text == alone


def test_stop_strings(server):
    client = server.client()
    text = complete(client, max_tokens=30).choices[0].text
    # A stop string from the middle of the greedy text: the answer is what
    # comes before its first occurrence.
    stop = text[len(text) // 2:len(text) // 2 + 2]
    assert stop
    r = complete(client, max_tokens=30, stop=[stop, "never-appears"])
    assert r.choices[0].text == text[:text.index(stop)]
    assert r.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text
                       for c in complete(client, max_tokens=30, stop=stop, stream=True))
    assert streamed == r.choices[0].text


def test_chat_logprobs(server):
    r = chat(server.client(), logprobs=True, top_logprobs=3, max_tokens=8)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0
        assert isinstance(entry.bytes, list)
        assert len(entry.top_logprobs) == 3
        # Greedy: the token taken is the most likely one.
        assert entry.top_logprobs[0].logprob == pytest.approx(entry.logprob, abs=1e-5)
        assert entry.top_logprobs[0].bytes == entry.bytes
    assert b"".join(bytes(e.bytes) for e in content).decode("utf-8", "replace") \
        .startswith(r.choices[0].message.content[:1])


def test_completion_logprobs(server):
    r = complete(server.client(), logprobs=2, max_tokens=8)
    lp = r.choices[0].logprobs
    n = r.usage.completion_tokens
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == n
    assert len(lp.text_offset) == n and lp.text_offset[0] == 0
    assert all(len(t) <= 2 for t in lp.top_logprobs)
    assert all(x <= 0 for x in lp.token_logprobs)


def test_adapter_selected_by_model_id(server):
    client = server.client()
    base = complete(client, max_tokens=24).choices[0].text
    tuned = complete(client, model=TUNED, max_tokens=24)
    assert tuned.model == TUNED
    assert tuned.choices[0].text != base
    # The explicit field, same adapter and scale: the same text.
    explicit = complete(client, max_tokens=24, extra_body={"adapters": {"all": 1.0}})
    assert explicit.choices[0].text == tuned.choices[0].text
    half = complete(client, max_tokens=24, extra_body={"adapters": [{"name": "all", "scale": 0.5}]})
    assert half.choices[0].text not in (tuned.choices[0].text,)


def test_mixed_adapters_in_one_batch(server):
    client = server.client()
    want = {m: complete(client, model=m, max_tokens=16).choices[0].text for m in (BASE, TUNED)}
    got = {}
    errors = []

    def run(i):
        m = (BASE, TUNED)[i % 2]
        try:
            got[i] = (m, complete(client, model=m, max_tokens=16).choices[0].text)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for m, text in got.values():
        assert text == want[m]


# -- endpoints without the client ----------------------------------------------------------


def test_health_needs_no_key(server):
    assert server.get("/health", key=None) == (200, '{"status":"ok"}')


def test_metrics(server):
    complete(server.client(), max_tokens=3)
    m = server.metrics()
    for name in ("hearth_engine_queue_depth", "hearth_engine_running_sequences",
                 "hearth_engine_generated_tokens_total", "hearth_engine_prompt_tokens_total",
                 "hearth_engine_kv_tokens_used", "hearth_engine_kv_tokens_capacity",
                 'hearth_serve_completions_total{outcome="length"}',
                 'hearth_serve_http_requests_total{code="200"}'):
        assert name in m, name
    assert m["hearth_engine_generated_tokens_total"] > 0
    assert server.get("/metrics", key=None)[0] == 401


# -- errors ----------------------------------------------------------------------------------


def error_of(text: str) -> dict:
    err = json.loads(text)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    return err


def test_bad_key_is_401(server):
    with pytest.raises(openai.AuthenticationError) as e:
        chat(server.client(key="wrong"))
    assert e.value.status_code == 401
    status, text = server.get("/v1/models", key=None)
    assert status == 401 and error_of(text)["code"] == "invalid_api_key"


def test_bad_json_is_400(server):
    for body in (b"{not json", b"[1,2]", b'{"messages": "x"}', b"\xff\xfe{}",
                 b"[" * 5000, b'{"messages":[{"role":"user","content":"x"}],"n":"2"}',
                 b'{"messages":[{"role":"user","content":"x"}],"temperature":9}'):
        status, text = server.raw("POST", "/v1/chat/completions", body)
        assert status == 400, body
        assert error_of(text)["type"] == "invalid_request_error"


def test_unknown_model_is_404(server):
    with pytest.raises(openai.NotFoundError) as e:
        chat(server.client(), model="gpt-4o")
    assert e.value.status_code == 404
    with pytest.raises(openai.NotFoundError):
        complete(server.client(), model=BASE + "+nope")


def test_oversize_body_is_413(server):
    with pytest.raises(openai.APIStatusError) as e:
        complete(server.client(), prompt="x" * (MAX_BODY + 1))
    assert e.value.status_code == 413


def test_max_tokens_over_limit_is_400(server):
    with pytest.raises(openai.BadRequestError) as e:
        chat(server.client(), max_tokens=401)
    assert e.value.status_code == 400 and "max_tokens" in str(e.value)


def test_unsupported_fields_are_refused(server):
    with pytest.raises(openai.BadRequestError):
        chat(server.client(), tools=[{"type": "function", "function": {"name": "f"}}])


# -- clients that go away, and garbage -------------------------------------------------------


def wait_for(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_disconnect_mid_stream_cancels(server):
    m = server.metrics()
    before = m['hearth_serve_completions_total{outcome="disconnected"}']
    generated = m["hearth_engine_generated_tokens_total"]
    sock = socket.create_connection((server.host, server.port), timeout=30)
    body = json.dumps({"model": BASE, "messages": CONVERSATION, "max_tokens": 400,
                       "temperature": 1.0, "seed": 9, "stream": True}).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Authorization: Bearer " + KEY.encode() + b"\r\n"
                 b"Content-Type: application/json\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    got = b""
    while b"data: " not in got:
        chunk = sock.recv(4096)
        assert chunk, got
        got += chunk
    sock.close()
    assert wait_for(lambda: server.metrics()[
        'hearth_serve_completions_total{outcome="disconnected"}'] == before + 1)
    assert wait_for(lambda: server.metrics()["hearth_engine_running_sequences"] == 0)
    # It ended well before its 400 tokens.
    assert server.metrics()["hearth_engine_generated_tokens_total"] - generated < 300


def test_disconnect_before_a_whole_answer_cancels(server):
    m = server.metrics()
    before = m['hearth_serve_completions_total{outcome="disconnected"}']
    body = json.dumps({"model": BASE, "prompt": "Once", "max_tokens": 400, "n": 16,
                       "temperature": 1.0, "seed": 3}).encode()

    def send() -> socket.socket:
        sock = socket.create_connection((server.host, server.port), timeout=30)
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + KEY.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        return sock

    # The tiny model answers 16 choices in well under a second on a quiet
    # machine, so first keep the 4 slots busy: three more such requests
    # (48 choices of up to 400 tokens) ahead of the one that goes away, whose
    # clients stay until the end and then go too.
    flood = [send() for _ in range(3)]
    try:
        assert wait_for(lambda: server.metrics()["hearth_engine_running_sequences"] > 0)
        sock = send()
        assert wait_for(lambda: server.metrics()["hearth_engine_queue_depth"] > 0)
        sock.close()
        assert wait_for(lambda: server.metrics()[
            'hearth_serve_completions_total{outcome="disconnected"}'] > before)
    finally:
        for f in flood:
            f.close()
    assert wait_for(lambda: server.metrics()["hearth_engine_running_sequences"] == 0)
    assert wait_for(lambda: server.metrics()["hearth_engine_queue_depth"] == 0)


def test_survives_garbage(server):
    junk = [
        b"\x00\xff" * 1000,
        b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 100000 + b"\r\n\r\n",
        b"POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
        b"\r\n\r\n\r\n",
        b"BREW /coffee HTCPCP/1.0\r\n\r\n",
    ]
    for j in junk:
        try:
            s = socket.create_connection((server.host, server.port), timeout=5)
            s.sendall(j)
            s.shutdown(socket.SHUT_WR)
            s.recv(65536)
            s.close()
        except OSError:
            pass
    bodies = [
        {"model": BASE, "messages": [{"role": "user", "content": "\u0000"}]},
        {"model": BASE, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
        {"model": BASE, "messages": [{"role": "user", "content": "x"}], "n": 10 ** 30},
        {"model": BASE, "prompt": [10 ** 9], "max_tokens": 2},
        {"model": BASE, "prompt": [-1]},
        {"model": BASE, "prompt": "x" * 30000, "max_tokens": 2},
        {"model": BASE, "prompt": "x", "stop": ["a"] * 100},
        {"model": BASE, "prompt": "x", "logprobs": 99},
        {"model": BASE, "prompt": "x", "adapters": {"all": 1e30}},
        {"model": BASE, "prompt": "x", "seed": -5, "max_tokens": 2},
        {"model": [BASE], "prompt": "x"},
    ]
    for b in bodies:
        path = "/v1/chat/completions" if "messages" in b else "/v1/completions"
        status, text = server.raw("POST", path, json.dumps(b).encode())
        assert status in (200, 400, 404), (b, status, text)
        if status != 200:
            error_of(text)
    assert server.get("/health") == (200, '{"status":"ok"}')
    assert chat(server.client(), max_tokens=2).choices[0].finish_reason in ("stop", "length")
    assert server.proc.poll() is None


def test_load_small(server):
    """scripts/serve_load.py at CI size: concurrent clients, mixed adapters,
    random disconnects; it asserts nothing lost, duplicated or hung."""
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "serve_load.py"), "--url", server.url,
         "--api-key", KEY, "--server-pid", str(server.proc.pid), "--clients", "8",
         "--requests", "40", "--disconnect", "0.1", "--max-tokens", "24", "--models",
         f"{BASE},{TUNED}", "--seed", "1"],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "lost 0" in r.stdout and "hung 0" in r.stdout


def test_throughput_script_counts_the_tokens_served(server):
    """scripts/serve_throughput.py: every request's tokens are counted (the
    tiny model with ignore_eos unknown to hearth may stop early, so the count
    is checked against the server's own /metrics delta), a bad key fails."""
    def generated():
        text = urllib.request.urlopen(
            urllib.request.Request(server.url + "/metrics",
                                   headers={"Authorization": "Bearer " + KEY})).read().decode()
        m = re.search(r"^hearth_engine_generated_tokens_total (\d+)", text, re.M)
        return int(m.group(1))

    before = generated()
    r = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "serve_throughput.py"), "--url", server.url,
         "--api-key", KEY, "--model", BASE, "--clients", "3", "--requests", "2",
         "--max-tokens", "6", "--json"],
        capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["requests"] == 6 and out["errors"] == 0
    assert 6 <= out["completion_tokens"] <= 36
    assert out["completion_tokens"] == generated() - before
    assert out["tokens_per_s"] > 0
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "serve_throughput.py"), "--url", server.url,
         "--api-key", "wrong", "--clients", "1", "--requests", "1"],
        capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "HTTP 401" in bad.stderr


def test_queue_full_is_429_with_retry_after():
    s = Server("--max-queue", "1", "--n-seq", "1")
    try:
        client = s.client()
        results = []
        start = threading.Barrier(10)

        def run():
            start.wait()
            try:
                complete(client, max_tokens=400, temperature=1.0)
                results.append(200)
            except openai.RateLimitError as e:
                assert e.response.headers["retry-after"]
                assert e.status_code == 429
                results.append(429)

        threads = [threading.Thread(target=run) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 10 and 429 in results and 200 in results
    finally:
        assert s.stop() == 0


def test_timeout_cancels():
    s = Server("--timeout", "1", "--n-seq", "1", "--max-queue", "256")
    try:
        client = s.client()
        got = []

        def run():
            try:
                complete(client, max_tokens=400, temperature=1.0, n=16)
                got.append("done")
            except openai.APIStatusError as e:
                got.append(e.status_code)

        # Enough work queued behind one slot (256 generations of up to 400
        # tokens, one at a time: many seconds even for the tiny model on a
        # quiet machine) that some request runs past 1 s.
        threads = [threading.Thread(target=run) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 504 in got
        assert wait_for(lambda: s.metrics()["hearth_engine_running_sequences"] == 0)
        assert s.metrics()['hearth_serve_completions_total{outcome="timeout"}'] >= 1
    finally:
        assert s.stop() == 0


def test_paged_kv_cache_gives_the_same_answers(server):
    """The cache is paged by default (--kv-block 16); a smaller pool, and
    fixed slots (--kv-block 0), give the same greedy answers."""
    want = [chat(server.client(), max_tokens=10).choices[0].message.content,
            complete(server.client(), max_tokens=10).choices[0].text]
    for extra, capacity in ((("--kv-block", "16", "--kv-pages", "12"), 16 * 12),
                            (("--kv-block", "0", "--ctx", "100"), 4 * 100)):
        s = Server(*extra)
        try:
            client = s.client()
            got = [chat(client, max_tokens=10).choices[0].message.content,
                   complete(client, max_tokens=10).choices[0].text]
            assert got == want, extra
            assert s.metrics()["hearth_engine_kv_tokens_capacity"] == capacity
        finally:
            assert s.stop() == 0


def test_choices_in_flight_share_the_prompt(server):
    """With the default paged cache, requests running together share the
    whole pages of their common prompt start: of n=3 choices of one prompt,
    the second and third take the first's pages instead of computing them."""
    system = {"role": "system", "content": "Answer briefly, kindly and in plain words. " * 4}
    msgs = [system, {"role": "user", "content": "What is a fever?"}]
    before = server.metrics()["hearth_engine_cached_prompt_tokens_total"]
    r = chat(server.client(), messages=msgs, n=3)
    after = server.metrics()["hearth_engine_cached_prompt_tokens_total"]
    assert len({c.message.content for c in r.choices}) == 1
    whole_pages = (r.usage.prompt_tokens - 1) // 16 * 16
    assert whole_pages >= 32
    assert after - before >= 2 * whole_pages, (before, after, r.usage.prompt_tokens)


# -- a DeepSeek-R1-shaped model end to end ---------------------------------------------------


def test_r1_distill_reasoning_is_returned_apart(tmp_path):
    """A model in the R1 distills' format (tests/python/r1_chain_model.py: their
    chat markup and template, a reply of <think> reasoning </think> then the
    answer) served end to end: the chat format is detected from the file, the
    reasoning comes back as reasoning_content, the answer as content, whole
    and streamed, and the completions endpoint returns the raw text."""
    import r1_chain_model as r1

    path = tmp_path / "tiny-r1-chain.gguf"
    r1.write(path)
    # `hearth chat` renders the same format and prints the reply as it is.
    chat_out = subprocess.run([str(HEARTH), "chat", "-m", str(path), "-p", "Capital of France?",
                               "--temp", "0", "-t", "1"], capture_output=True, text=True,
                              timeout=60)
    assert chat_out.returncode == 0, chat_out.stderr
    assert chat_out.stdout.strip() == ("<think>" + r1.REASONING + "</think>\n\n" +
                                       r1.ANSWER)
    s = Server(model=path, lora=False)
    try:
        client = s.client()
        question = [{"role": "user", "content": "What is the capital of France?"}]
        r = client.chat.completions.create(model=path.stem, messages=question, temperature=0)
        msg = r.choices[0].message
        assert msg.content == r1.ANSWER
        assert msg.model_extra["reasoning_content"] == r1.REASONING
        assert r.choices[0].finish_reason == "stop"
        # The conversation goes on with the answer only, as R1's template wants.
        more = question + [{"role": "assistant", "content": msg.content},
                           {"role": "user", "content": "And of Italy?"}]
        again = client.chat.completions.create(model=path.stem, messages=more, temperature=0)
        assert again.choices[0].message.content == r1.ANSWER
        assert again.usage.prompt_tokens > r.usage.prompt_tokens

        reasoning, content = [], []
        for chunk in client.chat.completions.create(model=path.stem, messages=question,
                                                    temperature=0, stream=True):
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            extra = delta.model_extra or {}
            if extra.get("reasoning_content"):
                reasoning.append(extra["reasoning_content"])
                assert not delta.content  # one kind of text per chunk
            if delta.content:
                content.append(delta.content)
        assert "".join(reasoning) == r1.REASONING
        assert "".join(content) == r1.ANSWER

        raw = client.completions.create(model=path.stem, prompt="Let", max_tokens=8,
                                        temperature=0)
        assert raw.choices[0].text == " me think.</think>\n\nParis"
    finally:
        assert s.stop() == 0
