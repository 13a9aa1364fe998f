"""LoRA fine-tuning from Python: hearth.finetune, Model.trainer and hearth.Trainer.

On the tiny random-weight fixtures: the loss falls, the trained adapter
changes the logits, the saved PEFT directory loads back to the same logits as
the in-memory adapter, and bad options fail with errors that name them.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import hearth
from conftest import ROOT

CLINIC = ROOT / "tests" / "data" / "training" / "clinic.jsonl"

RECORDS = [
    {"prompt": "Ward 3, bed 2:", "completion": " stable, BP 120/80."},
    {"prompt": "Ward 1, bed 4:", "completion": " febrile, 38.5 C."},
    {"text": "Handover at 7: two admissions, no incidents."},
    {"prompt": "Ward 2, bed 1:", "completion": " discharged home."},
]

FAST = dict(rank=4, alpha=8, lr=1e-2, seed=7)


@pytest.fixture
def notes(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return path


def logits(model, adapter=None, ids=(1, 2, 3, 4)):
    with model.session(adapters=[adapter] if adapter is not None else None) as s:
        s.feed(np.array(ids, dtype=np.int32))
        return s.logits().copy()


def test_trainer_steps_lower_the_loss(model, notes):
    t = model.trainer(notes, epochs=6, eval_split=0.25, schedule="cosine", warmup=1, **FAST)
    assert (t.step_count, t.total_steps, t.n_train, t.n_eval) == (0, 18, 3, 1)
    assert not t.done and t.losses.shape == (0,)
    steps = list(t.steps())
    assert [s.step for s in steps] == list(range(1, 19)) and t.done
    assert all(s.total == 18 for s in steps)
    assert steps[0].lr == 0.0  # warmup step 0, as Hugging Face schedules it
    assert all(s.tokens > 0 and s.trained_tokens > 0 and s.tokens_per_s > 0 for s in steps)
    # An eval loss after the last step of each of the 6 epochs (3 steps each).
    assert [s.step for s in steps if s.eval_loss is not None] == [3, 6, 9, 12, 15, 18]
    assert t.eval_losses.shape == (6,)
    losses = t.losses
    assert losses.dtype == np.float64 and losses.shape == (18,)
    np.testing.assert_array_equal(losses, [s.loss for s in steps])
    assert losses[-3:].mean() < 0.5 * losses[:3].mean()
    assert math.isfinite(t.evaluate())
    with pytest.raises(hearth.OutOfRangeError):
        t.step()
    assert list(t) == []  # nothing left to iterate


def test_adapter_changes_logits_and_save_load_round_trips(llama, notes, tmp_path):
    t = llama.trainer(notes, epochs=3, **FAST)
    t.run()
    mem = t.adapter()
    assert isinstance(mem, hearth.Adapter) and mem.rank == 4
    assert len(mem.targets) == 7 * llama.info.n_layer
    base = logits(llama)
    tuned = logits(llama, mem)
    assert np.abs(tuned - base).max() > 1e-3
    out = t.save(tmp_path / "ward")
    assert (tmp_path / "ward" / "adapter_config.json").is_file()
    assert (tmp_path / "ward" / "adapter_model.safetensors").is_file()
    disk = llama.load_adapter(out)
    np.testing.assert_allclose(logits(llama, disk), tuned, rtol=0, atol=1e-5)
    # The in-memory adapter is a snapshot: later steps do not change it.
    t2 = llama.trainer(notes, epochs=2, **FAST)
    t2.step()
    snap = t2.adapter()
    before = logits(llama, snap)
    t2.step()
    np.testing.assert_array_equal(logits(llama, snap), before)


def test_finetune_returns_an_adapter_ready_to_generate(qwen2, notes, tmp_path):
    seen = []
    adapter = hearth.finetune(qwen2, notes, out=tmp_path / "a", epochs=2, callback=seen.append,
                              targets=("q", "v"), **FAST)
    assert [s.step for s in seen] == list(range(1, 9))  # 4 examples x 2 epochs
    assert {t.weight.split(".")[2] for t in adapter.targets} == {"attn_q", "attn_v"}
    text = qwen2.generate("Ward 3, bed 2:", max_tokens=4, temperature=0, adapters=[adapter])
    assert isinstance(text, str)
    assert (tmp_path / "a" / "adapter_config.json").is_file()
    # The same seed and data give the same adapter.
    again = hearth.finetune(qwen2, notes, epochs=2, targets="q,v", **FAST)
    np.testing.assert_array_equal(logits(qwen2, again), logits(qwen2, adapter))


def test_callback_false_stops_and_a_dataset_works_as_data(qwen2, notes):
    data = qwen2.load_dataset(notes)
    t = qwen2.trainer(data, epochs=4, **FAST)
    calls = []

    def stop_at_3(s):
        calls.append(s.step)
        return False if s.step == 3 else None  # None (no return value) keeps going

    t.run(stop_at_3)
    assert calls == [1, 2, 3] and t.step_count == 3 and not t.done
    t.run()  # continues where it stopped
    assert t.done and t.losses.shape == (t.total_steps,)


def test_clinic_fixture_trains(qwen2):
    t = qwen2.trainer(CLINIC, epochs=2, **FAST)
    t.run()
    assert t.done and np.all(np.isfinite(t.losses))


def test_bad_options_are_clear_errors(qwen2, notes, tmp_path):
    with pytest.raises(hearth.InvalidArgumentError, match="rank"):
        qwen2.trainer(notes, rank=0)
    with pytest.raises(hearth.InvalidArgumentError, match="schedule"):
        qwen2.trainer(notes, schedule="exponential")
    with pytest.raises(hearth.InvalidArgumentError, match="'lm_head'"):
        qwen2.trainer(notes, targets=["q", "lm_head"])
    with pytest.raises(hearth.InvalidArgumentError, match="eval_split"):
        qwen2.trainer(notes, eval_split=0.9)
    with pytest.raises(hearth.InvalidArgumentError, match="lr"):
        qwen2.trainer(notes, lr=float("nan"))
    with pytest.raises(hearth.InvalidArgumentError, match="betas"):
        qwen2.trainer(notes, betas=(0.9,))
    with pytest.raises(TypeError, match="epochs"):
        qwen2.trainer(notes, epochs=1.5)
    with pytest.raises(TypeError, match="learning_rate"):
        qwen2.trainer(notes, learning_rate=1e-3)
    with pytest.raises(TypeError, match="data"):
        qwen2.trainer(42)
    with pytest.raises(hearth.InvalidArgumentError, match="ctx"):
        qwen2.trainer(qwen2.load_dataset(notes), ctx=64)
    with pytest.raises(hearth.NotFoundError):
        qwen2.trainer(tmp_path / "missing.jsonl")
    with pytest.raises(hearth.Error, match="empty.jsonl"):
        qwen2.trainer(ROOT / "tests" / "data" / "training" / "empty.jsonl")
    with pytest.raises(TypeError, match="hearth.Model.trainer"):
        hearth.Trainer()
    with pytest.raises(TypeError, match="model"):
        hearth.finetune("model.gguf", notes)


def test_a_resumed_trainer_ends_with_the_same_adapter(llama, notes, tmp_path):
    opts = dict(epochs=3, eval_split=0.25, schedule="cosine", warmup=1, **FAST)
    whole = llama.trainer(notes, **opts).run().save(tmp_path / "whole")
    first = llama.trainer(notes, **opts)
    for s in first:
        if s.step == 4:
            break
    first.save(tmp_path / "part", checkpoint=True)
    assert (tmp_path / "part" / "hearth-checkpoint.bin").is_file()
    second = llama.trainer(notes, **opts).resume(tmp_path / "part")
    assert second.step_count == 4
    second.run().save(tmp_path / "part")
    name = "adapter_model.safetensors"
    assert (tmp_path / "part" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    with pytest.raises(hearth.FailedPreconditionError, match="seed=8"):
        llama.trainer(notes, **dict(opts, seed=8)).resume(tmp_path / "part")
    with pytest.raises(hearth.NotFoundError, match="hearth-checkpoint.bin"):
        llama.trainer(notes, **opts).resume(whole)


def test_provenance_is_recorded_and_another_base_is_refused(notes, tmp_path):
    from conftest import MODELS

    f16 = hearth.Model(MODELS / "tiny-llama256-f16.gguf", device="cpu", threads=2)
    q8 = hearth.Model(MODELS / "tiny-llama256-q8_0.gguf", device="cpu", threads=2)
    out = tmp_path / "ward"
    mem = hearth.finetune(f16, notes, out=out, epochs=1, **FAST)
    rec = f16.load_adapter(out).provenance
    assert rec == mem.provenance
    assert rec["base_fingerprint"].startswith("xxh64:") and len(rec["base_fingerprint"]) == 22
    assert rec["data_hash"].startswith("xxh64:")
    assert rec["hearth_version"] == hearth.__version__
    assert (rec["seed"], rec["n_train"], rec["schedule"]) == (7, 4, "linear")
    assert hearth.Adapter.inspect(out).provenance == rec
    with pytest.raises(hearth.InvalidArgumentError) as e:
        q8.load_adapter(out)
    other = hearth.finetune(q8, notes, epochs=1, **FAST).provenance["base_fingerprint"]
    assert rec["base_fingerprint"] in str(e.value) and other in str(e.value)
    assert rec["base_fingerprint"] != other
    forced = q8.load_adapter(out, ignore_base=True)
    assert forced.provenance == rec
    # Another data file, another data hash; the same file, the same hash.
    data2 = tmp_path / "other.jsonl"
    data2.write_text(json.dumps({"text": "Night shift: quiet."}) + "\n", encoding="utf-8")
    assert hearth.finetune(f16, data2, **FAST).provenance["data_hash"] != rec["data_hash"]
    assert hearth.finetune(f16, notes, **FAST).provenance["data_hash"] == rec["data_hash"]


def test_init_adapter_continues_training(qwen2, notes, tmp_path):
    first = qwen2.trainer(notes, epochs=3, **FAST)
    first.run().save(tmp_path / "a")
    cont = qwen2.trainer(notes, epochs=1, init_adapter=tmp_path / "a", **FAST)
    # Before a step it is the same adapter; then it trains from there.
    np.testing.assert_array_equal(logits(qwen2, cont.adapter()),
                                  logits(qwen2, qwen2.load_adapter(tmp_path / "a")))
    fresh = qwen2.trainer(notes, epochs=1, **FAST)
    assert cont.step().loss < fresh.step().loss
    with pytest.raises(hearth.InvalidArgumentError, match="rank 4"):
        qwen2.trainer(notes, init_adapter=tmp_path / "a", **dict(FAST, rank=8))
    with pytest.raises(hearth.NotFoundError):
        qwen2.trainer(notes, init_adapter=tmp_path / "missing", **FAST)


def test_gguf_output_scores_as_the_peft_directory_and_reads_with_gguf_py(notes, tmp_path):
    import gguf

    from conftest import MODELS

    f16 = hearth.Model(MODELS / "tiny-llama256-f16.gguf", device="cpu", threads=2)
    q8 = hearth.Model(MODELS / "tiny-llama256-q8_0.gguf", device="cpu", threads=2)
    path = tmp_path / "ward.gguf"
    mem = hearth.finetune(f16, notes, out=tmp_path / "ward", gguf=path, epochs=1, **FAST)
    from_gguf = f16.load_adapter(path)
    from_peft = f16.load_adapter(tmp_path / "ward")
    assert from_gguf.format == "gguf"
    np.testing.assert_allclose(logits(f16, from_gguf), logits(f16, from_peft), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(logits(f16, from_gguf), logits(f16, mem), rtol=1e-6, atol=1e-6)
    assert from_gguf.provenance == mem.provenance
    with pytest.raises(hearth.InvalidArgumentError, match=mem.provenance["base_fingerprint"]):
        q8.load_adapter(path)
    # The layout llama.cpp reads, checked with gguf-py: metadata and shapes.
    r = gguf.GGUFReader(str(path))

    def field(key):
        f = r.fields[key]
        return f.contents() if hasattr(f, "contents") else f.parts[f.data[0]]

    assert field("general.type") == "adapter" and field("adapter.type") == "lora"
    assert field("general.architecture") == "llama"
    assert float(field("adapter.lora.alpha")) == FAST["alpha"]
    shapes = {t.name: [int(d) for d in t.shape] for t in r.tensors}
    assert len(shapes) == 2 * len(mem.targets)
    for t in mem.targets:
        # ne order: lora_a [n_in, r], lora_b [r, n_out].
        assert shapes[t.weight + ".lora_a"][1] == FAST["rank"]
        assert shapes[t.weight + ".lora_b"][0] == FAST["rank"]


def test_lora_dropout_repeats_and_resumes(llama, notes, tmp_path):
    opts = dict(epochs=2, lora_dropout=0.3, **FAST)
    a = hearth.finetune(llama, notes, out=tmp_path / "a", **opts)
    b = hearth.finetune(llama, notes, **opts)
    plain = hearth.finetune(llama, notes, **dict(opts, lora_dropout=0.0))
    np.testing.assert_array_equal(logits(llama, a), logits(llama, b))
    assert not np.array_equal(logits(llama, a), logits(llama, plain))
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["lora_dropout"] == pytest.approx(0.3)
    # Only PEFT's own keys (PEFT warns about others); the record is in the weights file.
    assert "hearth" not in config
    assert hearth.Adapter.inspect(tmp_path / "a").provenance["lora_dropout"] == pytest.approx(0.3)
    # Interrupted and resumed: the same masks, the same adapter.
    first = llama.trainer(notes, **opts)
    for s in first:
        if s.step == 3:
            break
    first.save(tmp_path / "part", checkpoint=True)
    llama.trainer(notes, **opts).resume(tmp_path / "part").run().save(tmp_path / "part")
    name = "adapter_model.safetensors"
    assert (tmp_path / "part" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    with pytest.raises(hearth.InvalidArgumentError, match="lora_dropout"):
        llama.trainer(notes, lora_dropout=-0.1)


def test_bf16_products_train_close_to_f32(llama, notes, tmp_path):
    # Mixed precision: the base model's products in bfloat16 where the CPU
    # has them (identical to F32 elsewhere); the loss curve stays within
    # bfloat16's rounding of the F32 one and still falls.
    opts = dict(epochs=3, **FAST)
    f32 = llama.trainer(notes, **opts).run()
    bf16 = llama.trainer(notes, bf16=True, **opts).run()
    a, b = f32.losses, bf16.losses
    assert len(a) == len(b) and b[-1] < b[0]
    np.testing.assert_allclose(b, a, rtol=5e-2)
    bf16.save(tmp_path / "a")
    assert hearth.Adapter.inspect(tmp_path / "a").provenance["bf16_products"] is True
    assert hearth.Adapter.inspect(tmp_path / "a").provenance["lora_dropout"] == 0
