"""hearth.Engine: many requests over one model, batched (hearth_engine_*).

Greedy output of each request equals a private session's (Model.generate),
with and without adapters, whatever else is in the batch; requests read with
for and with async for; cancellation; logprobs; closing with requests in
flight; stats; bad arguments."""

from __future__ import annotations

import asyncio
import gc
import math
import threading
import time

import pytest

import hearth

from conftest import ROOT

LORA = ROOT / "tests" / "data" / "lora"
PROMPTS = ["Once upon a time", "Hello", "The capital of France is a city that",
           "a b c d e f g h i j k l m n o p"]


def test_greedy_requests_in_one_batch_equal_generate(model):
    expected = [model.generate(p, max_tokens=12, temperature=0) for p in PROMPTS]
    with hearth.Engine(model, n_seq=4) as engine:
        reqs = [engine.submit(p, max_tokens=12, temperature=0) for p in PROMPTS]
        texts = [r.text() for r in reqs]
        assert texts == expected
        for prompt, r, text in zip(PROMPTS, reqs, texts):
            assert r.done and r.result is not None and r.result.text == text
            assert r.result.finish_reason in (hearth.StopReason.MAX_TOKENS,
                                              hearth.StopReason.EOG)
            assert r.result.n_generated_tokens == len(r.result.tokens)
            assert r.result.n_prompt_tokens == len(model.tokenize(prompt))
        assert len({r.id for r in reqs}) == len(reqs) and all(r.id != 0 for r in reqs)


def test_events(llama):
    with hearth.Engine(llama, n_seq=2) as engine:
        req = engine.submit("Hello", max_tokens=8, temperature=0)
        events = list(req)
    assert len(events) >= 2
    *tokens, last = events
    assert all(not e.done and e.token is not None and e.finish_reason is None for e in tokens)
    assert all(e.logprob is None and e.top_logprobs == () for e in tokens)
    assert last.done and last.token is None
    assert last.finish_reason == hearth.StopReason.MAX_TOKENS
    assert last.n_generated_tokens == 8 == len(tokens)
    assert last.n_prompt_tokens == 6
    assert last.first_token_seconds > 0
    # The reference text of tiny-llama (test_generate.py), as events.
    assert "".join(e.text for e in events) == "mentv A are8al\x1aF"
    assert list(req) == []  # a finished request yields nothing more


def test_tokens_and_messages_prompts(qwen2):
    ids = qwen2.tokenize("Once upon a time")
    messages = [{"role": "user", "content": "Hi there"}]
    with hearth.Engine(qwen2) as engine:
        by_ids = engine.generate(tokens=ids, max_tokens=10, temperature=0)
        by_text = engine.generate("Once upon a time", max_tokens=10, temperature=0)
        assert by_ids == by_text
        chat = engine.submit(messages=messages, max_tokens=10, temperature=0)
        assert chat.text() == qwen2.generate(messages, max_tokens=10, temperature=0)
        assert chat.result.n_prompt_tokens == len(qwen2.chat_tokenize(messages))
        # A conversation passed as `prompt` is the same request.
        assert engine.generate(messages, max_tokens=10, temperature=0) == chat.result.text


def test_seeded_sampling_equals_generate(model):
    kw = dict(max_tokens=16, temperature=1.1, top_k=0, top_p=0.9, min_p=0.0, seed=7)
    expected = model.generate(PROMPTS[0], **kw)
    with hearth.Engine(model, n_seq=3) as engine:
        reqs = [engine.submit(PROMPTS[0], **kw) for _ in range(3)]
        others = [engine.submit(p, max_tokens=16, temperature=0) for p in PROMPTS[1:]]
        assert [r.text() for r in reqs] == [expected] * 3
        for o in others:
            o.text()


def test_stop_strings(llama):
    full = llama.generate("Hello", max_tokens=8, temperature=0)  # "mentv A are8al\x1aF"
    with hearth.Engine(llama) as engine:
        req = engine.submit("Hello", max_tokens=8, temperature=0, stop=" are")
        assert req.text() == full[:full.index(" are")]
        assert req.result.finish_reason == hearth.StopReason.STRING
        assert req.text() == ""  # nothing more


def adapter_pair(llama):
    return llama.load_adapter(LORA / "llama-all"), llama.load_adapter(LORA / "llama-qv-rs")


def test_adapters_per_request_equal_generate(llama):
    a, b = adapter_pair(llama)
    cases = [
        None,
        {a: 1.0},
        [(b, 0.7)],
        {a: 1.0, b: 0.7},
        [a],
        [(0, 0.5)],
    ]
    as_objects = [
        None,
        [(a, 1.0)],
        [(b, 0.7)],
        [(a, 1.0), (b, 0.7)],
        [(a, 1.0)],
        [(a, 0.5)],
    ]
    expected = {}
    for i, pairs in enumerate(as_objects):
        for p in PROMPTS[:2]:
            expected[i, p] = llama.generate(p, max_tokens=10, temperature=0, adapters=pairs)
    assert expected[0, PROMPTS[0]] != expected[1, PROMPTS[0]], "the adapter changes nothing"
    with hearth.Engine(llama, n_seq=6, adapters=[a, b]) as engine:
        assert engine.adapters == (a, b)
        reqs = {(i, p): engine.submit(p, max_tokens=10, temperature=0, adapters=spec)
                for i, spec in enumerate(cases) for p in PROMPTS[:2]}
        got = {k: r.text() for k, r in reqs.items()}
    assert got == expected


def test_paged_kv_cache(model):
    expected = [model.generate(p, max_tokens=12, temperature=0) for p in PROMPTS]
    # 16-position pages, 6 in all: at most two or three requests fit at once.
    with hearth.Engine(model, n_seq=4, kv_block_size=16, kv_pages=6) as engine:
        reqs = [engine.submit(p, max_tokens=12, temperature=0) for p in PROMPTS]
        assert [r.text() for r in reqs] == expected
        assert engine.stats().kv_tokens_capacity == 6 * 16
        with pytest.raises(hearth.InvalidArgumentError):  # more than the whole pool
            engine.submit(PROMPTS[0], max_tokens=200)
        with pytest.raises(TypeError):
            hearth.Engine(model, kv_block_size=1.5)


def test_running_requests_share_prompt_pages(llama):
    """With a paged cache, requests in flight together share the whole pages
    of a common prompt start instead of computing them each."""
    system = "You are a careful assistant for a small clinic. " * 3
    prompts = [system + q for q in ("Hello", "What is a fever?", "Name a bone.")]
    expected = [llama.generate(p, max_tokens=6, temperature=0) for p in prompts]
    shared = len(llama.tokenize(system))
    with hearth.Engine(llama, n_seq=4, kv_block_size=4) as engine:
        reqs = [engine.submit(p, max_tokens=6, temperature=0) for p in prompts]
        results = [r.wait() for r in reqs]
        stats = engine.stats()
    assert [r.text for r in results] == expected
    # The first computes the common start, the others take its pages: all
    # whole 4-position pages of it, whichever order they were admitted in.
    cached = sorted(r.n_cached_tokens for r in results)
    assert cached[0] == 0
    assert all(c >= (shared - 4) // 4 * 4 for c in cached[1:]), (cached, shared)
    assert stats.cached_prompt_tokens == sum(cached)


def test_async_iteration_with_gather(model):
    expected = [model.generate(p, max_tokens=10, temperature=0) for p in PROMPTS]

    async def read(req: hearth.Request):
        pieces = []
        async for ev in req:
            pieces.append(ev.text)
        return "".join(pieces)

    async def main(engine):
        reqs = [engine.submit(p, max_tokens=10, temperature=0) for p in PROMPTS]
        ticks = 0
        done = asyncio.Event()

        async def ticker():  # the loop keeps running while requests wait
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)
        t = asyncio.ensure_future(ticker())
        texts = await asyncio.gather(*(read(r) for r in reqs[:2]),
                                     *(r.atext() for r in reqs[2:]))
        done.set()
        await t
        return texts, ticks

    with hearth.Engine(model, n_seq=2) as engine:
        texts, ticks = asyncio.run(main(engine))
    assert texts == expected
    assert ticks > 0


def test_wait_and_await_give_the_result(llama):
    expected = llama.generate("Hello", max_tokens=6, temperature=0)
    with hearth.Engine(llama, n_seq=2) as engine:
        req = engine.submit("Hello", max_tokens=6, temperature=0)
        assert req.result is None
        r = req.wait()
        assert r is req.result and r.text == expected
        assert r.finish_reason == hearth.StopReason.MAX_TOKENS and len(r.tokens) == 6
        assert req.wait() is r  # idempotent

        async def main():
            return await asyncio.gather(*(engine.submit("Hello", max_tokens=6, temperature=0)
                                          for _ in range(3)))

        results = asyncio.run(main())
    assert [x.text for x in results] == [expected] * 3


def test_cancel_mid_stream(llama):
    with hearth.Engine(llama, n_seq=2) as engine:
        req = engine.submit("Hello", max_tokens=None, temperature=0)
        first = next(req)
        assert not first.done
        assert req.cancel() is True
        rest = list(req)
        assert rest and rest[-1].done
        assert rest[-1].finish_reason == hearth.StopReason.CANCELLED
        assert req.result.finish_reason == hearth.StopReason.CANCELLED
        assert req.cancel() is False  # already ended
        # The slot is free again: a new request runs to completion.
        assert engine.submit("Hello", max_tokens=4, temperature=0).text() != ""
        assert engine.stats().requests_cancelled == 1


def test_async_cancel(llama):
    async def main(engine):
        req = engine.submit("Hello", max_tokens=None, temperature=0)
        events = []
        async for ev in req:
            events.append(ev)
            if len(events) == 2:
                req.cancel()
        return events

    with hearth.Engine(llama) as engine:
        events = asyncio.run(main(engine))
    assert events[-1].finish_reason == hearth.StopReason.CANCELLED


def test_logprobs(model):
    with hearth.Engine(model) as engine:
        req = engine.submit(PROMPTS[0], max_tokens=8, temperature=0, logprobs=True,
                            top_logprobs=3)
        events = list(req)
        plain = engine.generate(PROMPTS[0], max_tokens=8, temperature=0)
    tokens = [e for e in events if not e.done]
    assert len(tokens) == 8
    assert "".join(e.text for e in events) == plain  # logprobs change nothing
    for e in tokens:
        assert e.logprob is not None and e.logprob <= 0 and math.isfinite(e.logprob)
        assert len(e.top_logprobs) == 3
        lps = [lp for _, lp in e.top_logprobs]
        assert all(lp <= 0 for lp in lps) and lps == sorted(lps, reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert e.top_logprobs[0][0] == e.token
        assert e.logprob == pytest.approx(e.top_logprobs[0][1], abs=1e-5)


def test_top_logprobs_implies_logprobs(llama):
    with hearth.Engine(llama) as engine:
        ev = next(engine.submit("Hello", max_tokens=2, top_logprobs=1))
    assert ev.logprob is not None and len(ev.top_logprobs) == 1


def test_close_with_requests_in_flight(llama):
    engine = hearth.Engine(llama, n_seq=1)
    reqs = [engine.submit(p, max_tokens=None, temperature=0) for p in PROMPTS * 2]
    next(reqs[0])  # the first one runs, the others wait for its slot
    engine.close()
    assert engine.closed
    reasons = []
    for r in reqs:
        events = list(r)
        assert events[-1].done and r.done
        reasons.append(events[-1].finish_reason)
        assert r.cancel() is False
    assert reasons.count(hearth.StopReason.CANCELLED) >= len(reqs) - 1
    engine.close()  # idempotent
    with pytest.raises(hearth.FailedPreconditionError):
        engine.submit("Hello")
    with pytest.raises(hearth.FailedPreconditionError):
        engine.stats()
    assert "closed" in repr(engine)


def test_close_while_a_thread_reads(llama):
    # One slot and a queue of requests that each run until the context is
    # full: the last one is still waiting when the engine closes.
    engine = hearth.Engine(llama, n_seq=1)
    reqs = [engine.submit("Hello", max_tokens=None, temperature=0) for _ in range(16)]
    out = []
    t = threading.Thread(target=lambda: out.append(list(reqs[-1])))
    t.start()
    time.sleep(0.02)
    engine.close()
    t.join(10)
    assert not t.is_alive()
    assert out[0][-1].finish_reason == hearth.StopReason.CANCELLED


def test_dropping_an_unread_request_cancels_it(llama):
    with hearth.Engine(llama, n_seq=1) as engine:
        engine.submit("Hello", max_tokens=None, temperature=0)  # dropped at once
        gc.collect()
        # The one slot is free for the next request.
        assert engine.generate("Hello", max_tokens=3, temperature=0) != ""
        deadline = time.monotonic() + 10
        while engine.stats().requests_cancelled < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.stats().requests_cancelled == 1


def test_stats(llama):
    with hearth.Engine(llama, n_seq=3, n_ctx=128) as engine:
        s0 = engine.stats()
        assert isinstance(s0, hearth.EngineStats)
        assert s0.n_seq == 3 and s0.requests_submitted == 0 and s0.steps == 0
        assert s0.kv_tokens_capacity == 3 * 128
        reqs = [engine.submit(p, max_tokens=5, temperature=0) for p in PROMPTS[:3]]
        for r in reqs:
            r.text()
        cancelled = engine.submit("Hello", max_tokens=None)
        cancelled.cancel()
        list(cancelled)
        deadline = time.monotonic() + 10
        s = engine.stats()
        while (s.n_running or s.n_waiting) and time.monotonic() < deadline:
            time.sleep(0.01)
            s = engine.stats()
    assert s.requests_submitted == 4
    assert s.requests_finished == 4 and s.requests_cancelled == 1 and s.requests_failed == 0
    assert s.generated_tokens >= 15
    assert s.prompt_tokens + s.cached_prompt_tokens >= sum(
        len(llama.tokenize(p)) for p in PROMPTS[:3])
    assert s.steps > 0 and s.step_seconds > 0
    assert s.n_waiting == 0 and s.n_running == 0


def test_threads_submit_and_read(llama):
    expected = {p: llama.generate(p, max_tokens=6, temperature=0) for p in PROMPTS}
    got = {}
    with hearth.Engine(llama, n_seq=4) as engine:
        def work(p):
            got[p] = engine.generate(p, max_tokens=6, temperature=0)
        threads = [threading.Thread(target=work, args=(p,)) for p in PROMPTS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert got == expected


def test_bad_arguments(llama, qwen2):
    with pytest.raises(TypeError):
        hearth.Engine("model.gguf")
    with pytest.raises(TypeError):
        hearth.Engine(llama, n_seq="8")
    with pytest.raises(hearth.InvalidArgumentError):
        hearth.Engine(llama, n_seq=-1)
    with pytest.raises(hearth.InvalidArgumentError):
        hearth.Engine(llama, n_seq=100000)  # hearth.h: at most 256
    with pytest.raises(TypeError):
        hearth.Engine(llama, adapters=["x"])
    with pytest.raises(TypeError):
        hearth.Engine(llama, adapters=llama.load_adapter(LORA / "llama-all"))
    with pytest.raises(hearth.InvalidArgumentError):
        hearth.Engine(llama, adapters=[hearth.Adapter.inspect(LORA / "llama-all")])
    with pytest.raises(hearth.InvalidArgumentError):  # an adapter of another model
        hearth.Engine(llama, adapters=[qwen2.load_adapter(LORA / "qwen2-all")])

    a, b = adapter_pair(llama)
    with hearth.Engine(llama, adapters=[a]) as engine:
        bad = [
            (hearth.InvalidArgumentError, dict()),  # no prompt
            (hearth.InvalidArgumentError, dict(prompt="x", tokens=[1])),  # two
            (TypeError, dict(prompt=3)),
            (TypeError, dict(tokens="abc")),
            (hearth.InvalidArgumentError, dict(tokens=[10**6])),  # outside the vocabulary
            (hearth.InvalidArgumentError, dict(tokens=[])),
            (hearth.InvalidArgumentError, dict(prompt="x", max_tokens=0)),
            (hearth.InvalidArgumentError, dict(prompt="x", max_tokens=-2)),
            (TypeError, dict(prompt="x", max_tokens=1.5)),
            (hearth.InvalidArgumentError, dict(prompt="x", temperature=float("nan"))),
            (hearth.InvalidArgumentError, dict(prompt="x", top_p=2.0)),
            (hearth.InvalidArgumentError, dict(prompt="x", top_logprobs=21)),
            (TypeError, dict(prompt="x", logprobs=1)),
            (hearth.InvalidArgumentError, dict(prompt="x", stop="")),
            (TypeError, dict(prompt="x", stop=b"x")),
            (hearth.InvalidArgumentError, dict(prompt="x", adapters={b: 1.0})),  # not given
            (hearth.InvalidArgumentError, dict(prompt="x", adapters=[(1, 1.0)])),  # index
            (TypeError, dict(prompt="x", adapters=["a"])),
            (TypeError, dict(prompt="x", adapters=a)),
            (hearth.InvalidArgumentError, dict(prompt="x", adapters={a: float("inf")})),
            (TypeError, dict(messages=[{"role": "user", "content": "x"}], add_special=True)),
            (hearth.InvalidArgumentError, dict(messages=[{"role": "user"}])),
            (hearth.InvalidArgumentError, dict(prompt="x" * 5000)),  # longer than n_ctx
        ]
        for exc, kw in bad:
            with pytest.raises(exc):
                engine.submit(**kw)
        # Nothing bad was accepted, and the engine still works.
        assert engine.stats().requests_submitted == 0
        assert engine.generate("Hello", max_tokens=2, temperature=0) != ""


def test_queue_limit(llama):
    with hearth.Engine(llama, n_seq=1, max_waiting=1) as engine:
        running = engine.submit("Hello", max_tokens=None)
        next(running)  # holds the one slot
        waiting = engine.submit("Hello", max_tokens=2)
        with pytest.raises(hearth.ResourceExhaustedError):
            engine.submit("Hello", max_tokens=2)
        running.cancel()
        assert waiting.text() is not None
        list(running)


def test_stop_reason_values():
    assert hearth.StopReason.CANCELLED == 6 and hearth.StopReason.ERROR == 7


def test_request_cannot_be_made_directly():
    with pytest.raises(TypeError):
        hearth.Request()


class _FailingHandle:
    """Stands in for _hearth.Request: one token, then a failed DONE (the
    engine reports a failed graph this way; the tiny models cannot fail)."""

    id = 42

    def __init__(self):
        self.events = [
            (0, "ab", 5, -0.5, [], 0, 0, "", 3, 0, 1, 0.01),
            (1, "", -1, 0.0, [], int(hearth.StopReason.ERROR),
             int(hearth.StatusCode.RESOURCE_EXHAUSTED), "step: out of memory", 3, 0, 1, 0.01),
        ]

    def next(self):
        return self.events.pop(0) if self.events else None

    poll = next


def test_a_failed_request_raises_its_error():
    req = hearth.Request._make(_FailingHandle(), None, False)
    it = iter(req)
    assert next(it).text == "ab"
    with pytest.raises(hearth.ResourceExhaustedError, match="out of memory"):
        next(it)
    assert req.done and req.result is None
    assert isinstance(req.error, hearth.ResourceExhaustedError)
    assert list(req) == []
    with pytest.raises(hearth.ResourceExhaustedError):
        req.wait()  # the error again

    async def read():
        r = hearth.Request._make(_FailingHandle(), None, False)
        with pytest.raises(hearth.ResourceExhaustedError):
            await r.atext()

    asyncio.run(read())
