"""LoRA adapters from Python: logits against the PEFT reference fixtures
(tests/data/lora/ref.json, made by scripts/fixtures/make_lora_fixtures.py;
float64 PEFT on the same weights), PEFT vs GGUF files, attaching, detaching
and stacking on sessions, inspection, bad input, and the merged export."""

from __future__ import annotations

import dataclasses
import gc
import json
import math

import numpy as np
import pytest

import hearth

from conftest import LLAMA, QWEN2, ROOT

LORA = ROOT / "tests" / "data" / "lora"
REF = json.loads((LORA / "ref.json").read_text())
TOL = REF["tolerance"]["rel"]
CASES = {c["name"]: c for c in REF["cases"]}
# The same adapter from its PEFT directory and its GGUF file: both are read
# exactly (float32 tensors), so only the order of float operations may differ.
SAME_FILE_TOL = 1e-5


def rel_error(got: np.ndarray, ref: np.ndarray) -> float:
    """The fixtures' metric: max|got - ref| / max|ref|."""
    return float(np.max(np.abs(got.astype(np.float64) - ref)) / np.max(np.abs(ref)))


def model_for(base_model: str, request) -> hearth.Model:
    path = (LORA / base_model).resolve()
    if path == LLAMA.resolve():
        return request.getfixturevalue("llama")
    if path == QWEN2.resolve():
        return request.getfixturevalue("qwen2")
    raise AssertionError(f"ref.json names an unexpected base model {base_model}")


# Adapters are loaded once per (model, file) for the whole run, as a server would.
_loaded = {}


def adapter(model: hearth.Model, rel_path: str) -> hearth.Adapter:
    key = (id(model), rel_path)
    if key not in _loaded:
        _loaded[key] = model.load_adapter(LORA / rel_path)
    return _loaded[key]


def case_adapters(case, model, kind: str):
    """The case's (adapter, scale) pairs from its PEFT directories ("path")
    or its GGUF files ("gguf")."""
    return [(adapter(model, a[kind]), a["scale"]) for a in case["adapters"]]


def reference_rows(case, prompt, n_vocab: int) -> np.ndarray:
    rows = np.fromfile(LORA / prompt["logits"], dtype="<f4").reshape(-1, n_vocab)
    assert rows.shape[0] == len(prompt["tokens"])
    return rows.astype(np.float64)


def logits_token_by_token(session: hearth.Session, tokens) -> np.ndarray:
    got = []
    for t in tokens:
        session.feed([t])
        got.append(session.logits())
    return np.stack(got)


def gguf_kinds(case):
    return ["path", "gguf"] if all(a["gguf"] for a in case["adapters"]) else ["path"]


# -- numerics against the PEFT reference ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_logits_match_peft(name, request):
    case = CASES[name]
    model = model_for(case["base_model"], request)
    for kind in gguf_kinds(case):
        pairs = case_adapters(case, model, kind)
        for p in case["prompts"]:
            rows = reference_rows(case, p, model.n_vocab)
            with model.session(adapters=pairs) as s:
                assert [(a, sc) for a, sc in s.adapters] == pairs
                # Every position, one token at a time (the decode path) …
                err = rel_error(logits_token_by_token(s, p["tokens"]), rows)
                assert err <= TOL, f"{name} {kind} {p['text']!r}: rel error {err:.2e} > {TOL:.0e}"
                # … and the whole prompt in one batch (the prompt path).
                s.reset()
                s.feed(p["tokens"])
                err = rel_error(s.logits(), rows[-1])
                assert err <= TOL, f"{name} {kind} {p['text']!r} batched: {err:.2e} > {TOL:.0e}"


def test_cases_change_the_base_logits():
    # Guards the test above against adapters that would do nothing.
    for case in REF["cases"]:
        for p in case["prompts"]:
            assert p["rel_change_vs_base"] > 100 * TOL, case["name"]


@pytest.mark.parametrize("name", [n for n, a in REF["adapters"].items() if a["gguf"]])
def test_peft_directory_and_gguf_file_agree(name, request):
    entry = REF["adapters"][name]
    model = model_for(entry["base_model"], request)
    peft, gguf = adapter(model, entry["peft"]), adapter(model, entry["gguf"])
    assert (peft.format, gguf.format) == ("peft", "gguf")
    tokens = max((p["tokens"] for c in REF["cases"] for p in c["prompts"]), key=len)
    with model.session(adapters=[(peft, 0.7)]) as a, model.session(adapters=[(gguf, 0.7)]) as b:
        got_a = logits_token_by_token(a, tokens)
        got_b = logits_token_by_token(b, tokens)
    assert rel_error(got_a, got_b.astype(np.float64)) <= SAME_FILE_TOL


# -- sessions ---------------------------------------------------------------------------------


def fresh_logits(model, tokens, adapters=None) -> np.ndarray:
    with model.session(adapters=adapters) as s:
        s.feed(tokens)
        return s.logits()


def test_detaching_restores_the_base_model_exactly(llama):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    tokens = CASES["llama-all-s1.0"]["prompts"][-1]["tokens"]
    base = fresh_logits(llama, tokens)
    with llama.session(adapters=[a]) as s:
        s.feed(tokens)
        assert not np.array_equal(s.logits(), base)
        s.set_adapters([])
        assert s.adapters == () and s.n_past == 0  # a new set resets the context
        s.feed(tokens)
        np.testing.assert_array_equal(s.logits(), base)
        s.set_adapters(None)  # None detaches too (and is no change here)
        assert s.n_past == len(tokens)


def test_set_adapters_resets_only_when_the_set_changes(llama):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    b = adapter(llama, REF["adapters"]["llama-qv-rs"]["peft"])
    tokens = CASES["llama-all-s1.0"]["prompts"][1]["tokens"]
    with llama.session(adapters=[(a, 0.5)]) as s:
        s.feed(tokens)
        s.set_adapters([(a, 0.5)])  # the same set and scale: the context stays
        assert s.n_past == len(tokens)
        s.set_adapters([(a, 0.25)])  # another scale: reset
        assert s.n_past == 0 and s.adapters == ((a, 0.25),)
        s.feed(tokens)
        s.set_adapters([a, (b, 0.7)])  # stacking: reset, pairs kept in order
        assert s.n_past == 0 and s.adapters == ((a, 1.0), (b, 0.7))
        s.reset()  # reset keeps the adapters
        assert s.adapters == ((a, 1.0), (b, 0.7))
        s.feed(tokens)
        np.testing.assert_array_equal(s.logits(), fresh_logits(llama, tokens, [a, (b, 0.7)]))


def test_two_sessions_with_different_adapters_interleaved(llama):
    one, two = CASES["llama-all-s1.0"], CASES["llama-qv-rs-s1.0"]
    p1, p2 = one["prompts"][1], two["prompts"][1]
    want1 = reference_rows(one, p1, llama.n_vocab)
    want2 = reference_rows(two, p2, llama.n_vocab)
    with llama.session() as b:
        base = logits_token_by_token(b, p1["tokens"])[-1]
    with llama.session(adapters=case_adapters(one, llama, "path")) as s1, \
            llama.session(adapters=case_adapters(two, llama, "path")) as s2, \
            llama.session() as s0:
        got1, got2 = [], []
        for t1, t2 in zip(p1["tokens"], p2["tokens"]):
            s1.feed([t1])
            s0.feed([t1])
            s2.feed([t2])
            got1.append(s1.logits())
            got2.append(s2.logits())
        np.testing.assert_array_equal(s0.logits(), base)  # the base session is untouched
    assert len(got1) == len(p1["tokens"]) and len(got2) == len(p2["tokens"])
    assert rel_error(np.stack(got1), want1) <= TOL
    assert rel_error(np.stack(got2), want2) <= TOL


def test_generate_and_stream_with_adapters(llama):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    kw = dict(max_tokens=12, temperature=0, add_special=True)
    text = llama.generate("Once upon", adapters=[(a, 0.8)], **kw)
    assert text == "".join(llama.stream("Once upon", adapters=[(a, 0.8)], **kw))
    with llama.session(adapters=[(a, 0.8)]) as s:
        assert s.generate("Once upon", **kw) == text
        assert s.last_result.n_generated_tokens > 0
    # The adapter takes part: the first greedy token is the argmax of the adapted logits.
    ids = llama.tokenize("Once upon")
    first = int(np.argmax(fresh_logits(llama, ids, [(a, 0.8)])))
    assert llama.generate("Once upon", adapters=[(a, 0.8)], max_tokens=1, temperature=0) == \
        llama.detokenize([first])


# -- what an adapter is ---------------------------------------------------------------------


def check_description(a: hearth.Adapter, entry) -> None:
    assert a.rank == entry["rank_max"], "hearth_adapter_info.rank is the largest over targets"
    assert a.alpha == pytest.approx(entry["lora_alpha"])
    assert a.use_rslora == entry["use_rslora"]
    assert a.n_params == entry["n_params"]
    targets = a.targets
    assert len(targets) == entry["n_targets"] == len(entry["targets"])
    # hearth.h promises order by layer; within a layer the file's order decides.
    layers = [int(t.weight.split(".")[1]) for t in targets]
    assert layers == sorted(layers)
    wanted = {t["weight"]: t for t in entry["targets"]}
    for got in targets:
        assert isinstance(got, hearth.AdapterTarget)
        want = wanted.pop(got.weight)
        # `source` is the name in the file: PEFT's module, or the GGUF tensor's stem.
        source = want["source"] if a.format == "peft" else got.weight[: -len(".weight")]
        assert (got.weight, got.source, got.rank, got.n_in, got.n_out) == (
            want["weight"], source, want["rank"], want["n_in"], want["n_out"])
        assert got.scale == pytest.approx(want["scale"], rel=1e-6)


@pytest.mark.parametrize("name", sorted(REF["adapters"]))
def test_inspect_peft_directory(name):
    entry = REF["adapters"][name]
    a = hearth.Adapter.inspect(LORA / entry["peft"])
    check_description(a, entry)
    assert a.format == "peft" and not a.bound and a.model is None
    assert a.base_architecture == ""  # a PEFT config does not record it
    assert a.path.rstrip("/").endswith(entry["peft"].rstrip("/").split("/")[-1])
    assert "inspect-only" in repr(a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.targets[0].rank = 99  # type: ignore[misc]


@pytest.mark.parametrize("name", [n for n, a in REF["adapters"].items() if a["gguf"]])
def test_inspect_gguf_file_and_bound_adapter(name, request):
    entry = REF["adapters"][name]
    a = hearth.Adapter.inspect(LORA / entry["gguf"])
    check_description(a, entry)
    assert a.format == "gguf" and a.base_architecture == entry["arch"] and not a.bound
    model = model_for(entry["base_model"], request)
    b = adapter(model, entry["peft"])
    check_description(b, entry)
    assert b.bound and b.model is model and b.base_architecture == entry["arch"]
    assert repr(b).startswith("<hearth.Adapter ") and "targets" in repr(b)


def test_adapter_keeps_its_model_alive():
    model = hearth.Model(LLAMA, device="cpu", threads=2)
    a = model.load_adapter(LORA / REF["adapters"]["llama-all"]["peft"])
    tokens = CASES["llama-all-s1.0"]["prompts"][1]["tokens"]
    want = fresh_logits(model, tokens, [a])
    del model
    gc.collect()
    with a.model.session(adapters=[a]) as s:
        s.feed(tokens)
        np.testing.assert_array_equal(s.logits(), want)
    s2 = a.model.session(adapters=[a])
    del a
    gc.collect()
    s2.feed(tokens)  # the session holds the C adapter and model
    np.testing.assert_array_equal(s2.logits(), want)
    s2.close()


# -- bad input --------------------------------------------------------------------------------


def test_missing_path(llama, tmp_path):
    missing = tmp_path / "no-such-adapter"
    with pytest.raises(hearth.NotFoundError) as e:
        llama.load_adapter(missing)
    assert "no-such-adapter" in e.value.message
    with pytest.raises(hearth.NotFoundError):
        hearth.Adapter.inspect(str(missing))
    with pytest.raises(TypeError):
        llama.load_adapter(42)  # type: ignore[arg-type]
    with pytest.raises(hearth.InvalidArgumentError):
        llama.load_adapter(str(missing) + "\0x")


def test_not_an_adapter(llama, tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\xff" * 60)
    with pytest.raises(hearth.Error) as e:
        llama.load_adapter(junk)
    assert "junk.gguf" in e.value.message
    with pytest.raises(hearth.Error):
        llama.load_adapter(LLAMA)  # a model, not an adapter
    with pytest.raises(hearth.Error):
        llama.load_adapter(tmp_path)  # an empty directory


@pytest.mark.parametrize("entry", REF.get("bad", []), ids=lambda e: e["path"])
def test_bad_adapters_are_refused_by_name(entry, request):
    model = model_for(entry["base_model"], request)
    with pytest.raises(hearth.InvalidArgumentError) as e:
        model.load_adapter(LORA / entry["path"])
    name = entry["path"].rstrip("/").split("/")[-1]
    assert name in e.value.message, e.value.message


def test_adapter_of_another_architecture(llama, qwen2):
    qwen_entry = REF["adapters"]["qwen2-all"]
    # A GGUF LoRA records its architecture. (A PEFT config does not, and the
    # two tiny models have the same projection shapes, so only GGUF can fail.)
    with pytest.raises(hearth.InvalidArgumentError) as e:
        llama.load_adapter(LORA / qwen_entry["gguf"])
    assert "qwen2" in e.value.message and "llama" in e.value.message
    # Loaded for qwen2, attached to a llama session: the C library refuses it.
    q = adapter(qwen2, qwen_entry["peft"])
    with llama.session() as s:
        with pytest.raises(hearth.InvalidArgumentError) as e:
            s.set_adapters([q])
        assert "another model" in e.value.message
    with pytest.raises(hearth.InvalidArgumentError):
        llama.generate("hi", adapters=[q], max_tokens=1)
    with pytest.raises(hearth.InvalidArgumentError):
        llama.stream("hi", adapters=[(q, 0.5)], max_tokens=1)  # raised at the call


def test_bad_adapters_argument(llama):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    with llama.session() as s:
        for bad in ([42], [a, "x"], [(a,)], [(a, 1.0, 2.0)], [(0.5, a)], [None]):
            with pytest.raises(TypeError, match=r"adapters\[\d\]"):
                s.set_adapters(bad)
        for bad in (a, "adapter", 3, {a: 0.5}):
            with pytest.raises(TypeError, match="adapters must be"):
                s.set_adapters(bad)
        with pytest.raises(TypeError, match="scale"):
            s.set_adapters([(a, "0.5")])
        with pytest.raises(TypeError, match="scale"):
            s.set_adapters([(a, True)])
        for scale in (math.nan, math.inf, 1e39):
            with pytest.raises(hearth.InvalidArgumentError, match="scale"):
                s.set_adapters([(a, scale)])
        assert s.adapters == ()
    with pytest.raises(TypeError):
        llama.generate("hi", adapters=[42], max_tokens=1)
    with pytest.raises(TypeError):
        llama.session(adapters=42)
    with pytest.raises(TypeError):
        hearth.Adapter()  # only load_adapter / inspect make one


def test_inspect_only_adapter_cannot_be_attached(llama):
    a = hearth.Adapter.inspect(LORA / REF["adapters"]["llama-all"]["peft"])
    with pytest.raises(hearth.InvalidArgumentError) as e:
        llama.session(adapters=[a])
    assert "without a model" in e.value.message


def test_failed_set_adapters_changes_nothing(llama, qwen2):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    q = adapter(qwen2, REF["adapters"]["qwen2-all"]["peft"])
    tokens = CASES["llama-all-s1.0"]["prompts"][1]["tokens"]
    with llama.session(adapters=[(a, 0.5)]) as s:
        s.feed(tokens[:-1])
        with pytest.raises(hearth.InvalidArgumentError):
            s.set_adapters([a, q])
        assert s.adapters == ((a, 0.5),) and s.n_past == len(tokens) - 1
        s.feed(tokens[-1:])
        np.testing.assert_array_equal(s.logits(), fresh_logits(llama, tokens, [(a, 0.5)]))


def test_set_adapters_on_closed_or_busy_session(llama):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    s = llama.session()
    stream = s.stream("Once upon", max_tokens=50, temperature=0)
    next(stream)
    with pytest.raises(hearth.FailedPreconditionError):
        s.set_adapters([a])  # a stream over the session is open
    stream.close()
    s.set_adapters([a])
    s.close()
    with pytest.raises(hearth.FailedPreconditionError):
        s.set_adapters([])


# -- merged export -----------------------------------------------------------------------------


def test_export_merged_equals_the_adapter_session(llama, tmp_path):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    out = tmp_path / "merged.gguf"
    llama.export_merged(out, [(a, 1.0)], merged_type="f32")
    merged = hearth.Model(out, device="cpu", threads=2)
    assert merged.info.n_vocab == llama.n_vocab
    tokens = CASES["llama-all-s1.0"]["prompts"][-1]["tokens"]
    with merged.session() as m, llama.session(adapters=[a]) as s:
        got = logits_token_by_token(m, tokens)
        want = logits_token_by_token(s, tokens)
    assert rel_error(got, want.astype(np.float64)) <= 1e-5


def test_export_merged_bad_input(llama, tmp_path):
    a = adapter(llama, REF["adapters"]["llama-all"]["peft"])
    inspected = hearth.Adapter.inspect(LORA / REF["adapters"]["llama-all"]["peft"])
    out = tmp_path / "merged.gguf"
    with pytest.raises(hearth.InvalidArgumentError):
        llama.export_merged(out, [inspected])
    with pytest.raises(hearth.InvalidArgumentError):
        llama.export_merged(out, [a], merged_type="q4_k")
    with pytest.raises(TypeError):
        llama.export_merged(out, [a], merged_type=8)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        llama.export_merged(out, None)  # type: ignore[arg-type]
    with pytest.raises(hearth.Error):
        llama.export_merged(tmp_path / "no-such-dir" / "merged.gguf", [a])
    assert not out.exists()
