"""Threads: one model shared by many sessions; the GIL released in compute;
a session shared by mistake fails cleanly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import hearth

PROMPTS = ["Once upon a time", "Hello", "The capital of France is", "Café: naïve users copy"]


def test_threads_with_own_sessions_agree_with_sequential(model):
    kw = dict(max_tokens=24, temperature=0.8, seed=5)
    want = {p: model.generate(p, **kw) for p in PROMPTS}

    def work(i: int):
        p = PROMPTS[i % len(PROMPTS)]
        if i % 2:
            return p, "".join(model.stream(p, **kw))
        with model.session() as s:
            return p, s.generate(p, **kw)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, range(16)))
    for p, text in results:
        assert text == want[p], p


def test_threads_logits_agree(llama):
    ids = llama.tokenize("The quick brown fox jumps over the lazy dog")
    with llama.session() as s:
        s.feed(ids)
        want = s.logits()

    def work(_):
        with llama.session() as s:
            s.feed(ids)
            return s.logits()

    with ThreadPoolExecutor(max_workers=4) as pool:
        for got in pool.map(work, range(8)):
            np.testing.assert_array_equal(got, want)


def _other_thread_runs_during(call, s: hearth.Session) -> bool:
    """True if the main thread could run Python code while `call` (on a
    worker thread) was inside hearth: it then sees the session busy."""
    saw_busy = False
    done = threading.Event()

    def worker():
        try:
            call()
        finally:
            done.set()

    t = threading.Thread(target=worker)
    t.start()
    while not done.is_set():
        try:
            s.n_past
        except hearth.FailedPreconditionError:
            saw_busy = True
        done.wait(0.0005)  # leave the cores to the compute threads
    t.join()
    return saw_busy


def test_gil_is_released_during_generate_and_feed(llama):
    with llama.session(ctx=512) as s:
        assert _other_thread_runs_during(
            lambda: s.generate("Hello", max_tokens=200, temperature=0), s)
        s.reset()
        ids = list(np.random.default_rng(0).integers(3, llama.n_vocab, 500))
        assert _other_thread_runs_during(lambda: s.feed(ids), s)


def test_one_session_two_threads_fails_cleanly(llama):
    errors: list[BaseException] = []
    with llama.session(ctx=512) as s:
        start = threading.Barrier(3)

        def hammer():
            start.wait()
            for _ in range(30):
                try:
                    s.reset()
                    s.feed([1, 2, 3, 4, 5, 6, 7, 8])
                    s.logits()
                except hearth.FailedPreconditionError:
                    pass
                except BaseException as e:  # anything else is a bug
                    errors.append(e)

        threads = [threading.Thread(target=hammer) for _ in range(2)]
        for t in threads:
            t.start()
        start.wait()
        for t in threads:
            t.join()
    assert not errors, errors


def test_stream_consumed_on_another_thread(llama):
    want = llama.generate("Hello", max_tokens=12, temperature=0)
    g = llama.stream("Hello", max_tokens=12, temperature=0)
    out: list[str] = []
    t = threading.Thread(target=lambda: out.extend(g))
    t.start()
    t.join()
    assert "".join(out) == want


@pytest.mark.parametrize("n", [4])
def test_model_outlives_nothing(n):
    """Sessions keep their model alive after the Model object is gone."""
    from conftest import LLAMA

    m = hearth.Model(LLAMA, threads=1)
    want = m.generate("Hello", max_tokens=n, temperature=0)
    s = m.session()
    g = m.stream("Hello", max_tokens=n, temperature=0)
    del m
    import gc

    gc.collect()
    assert s.generate("Hello", max_tokens=n, temperature=0) == want
    assert "".join(g) == want
