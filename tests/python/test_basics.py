"""Import, devices, model description, parameter dataclasses, docs."""

from __future__ import annotations

import pydoc

import numpy as np

import hearth
from hearth import _hearth

from conftest import LLAMA


def test_version_and_abi():
    assert hearth.__version__ == _hearth.version_string() != ""
    major, minor = hearth.abi_version()
    assert major == _hearth.ABI_VERSION_MAJOR
    assert minor >= 0


def test_devices_lists_the_cpu():
    devices = hearth.devices()
    assert devices, "the CPU plugin should be found next to libhearth"
    cpu = [d for d in devices if d.name == "cpu"]
    assert len(cpu) == 1
    assert isinstance(cpu[0], hearth.DeviceInfo)
    assert cpu[0].plugin == "cpu"
    assert cpu[0].memory_total >= cpu[0].memory_free >= 0


def test_plugins_report_the_cpu_plugin():
    plugins = hearth.plugins()
    cpu = [p for p in plugins if p.name == "cpu"]
    assert cpu and cpu[0].load_error is None and cpu[0].probe_score > 0
    assert cpu[0].abi_major == hearth.abi_version()[0]


def test_explicit_runtime_without_plugins_has_no_devices(tmp_path):
    rt = hearth.Runtime(tmp_path, explicit_only=True, log_level=0)
    assert rt.devices() == []


def test_model_info(llama, qwen2):
    i = llama.info
    assert isinstance(i, hearth.ModelInfo)
    assert (i.architecture, i.n_vocab, i.n_embd, i.n_layer, i.n_head, i.n_head_kv) == (
        "llama", 512, 64, 2, 4, 2)
    assert i.device == "cpu"
    assert i.token_bos == 1 and i.token_eos == 2
    assert i.tokenizer_kind == hearth.TokenizerKind.SPM
    assert i.file_size == LLAMA.stat().st_size
    assert i.n_params > 0 and "F32" in i.quantization
    assert qwen2.info.architecture == "qwen2"
    assert qwen2.info.tokenizer_kind == hearth.TokenizerKind.BPE
    assert llama.n_vocab == 512
    assert "llama" in repr(llama)


def test_meta(llama):
    assert llama.meta("general.architecture") == "llama"
    assert llama.meta("llama.block_count") == "2"
    assert llama.meta("no.such.key") is None
    assert llama.meta("bad\0key") is None


def test_sampling_defaults_match_the_c_header():
    c = _hearth.sampling_defaults()
    p = hearth.SamplingParams()
    for name, value in c.items():
        mine = getattr(p, name)
        if isinstance(value, float):
            assert np.float32(mine) == np.float32(value), name
        else:
            assert mine == value, name


def test_sampling_params_is_frozen_and_validated():
    p = hearth.SamplingParams(temperature=0.5, top_k=10, seed=7)
    assert p.replace(seed=8).seed == 8 and p.seed == 7
    assert hearth.SamplingParams.greedy().temperature == 0
    try:
        p.seed = 1  # type: ignore[misc]
    except Exception as e:  # dataclasses.FrozenInstanceError
        assert "seed" in str(e)
    else:
        raise AssertionError("SamplingParams should be frozen")
    assert hash(p) == hash(hearth.SamplingParams(temperature=0.5, top_k=10, seed=7))


def test_help_is_useful():
    text = pydoc.render_doc(hearth.Model)
    for word in ("generate", "stream", "session", "tokenize", "max_tokens", "temperature",
                 "top_p", "stop", "NotFoundError"):
        assert word in text, word
    assert "{generate_args}" not in text
    assert "logits" in pydoc.render_doc(hearth.Session)


def test_error_hierarchy():
    assert issubclass(hearth.InvalidArgumentError, hearth.Error)
    assert issubclass(hearth.InvalidArgumentError, ValueError)
    assert issubclass(hearth.NotFoundError, FileNotFoundError)
    assert issubclass(hearth.ResourceExhaustedError, MemoryError)
    assert issubclass(hearth.UnimplementedError, NotImplementedError)
    e = hearth.errors._from_status(5, "x.gguf: no such file")
    assert type(e) is hearth.NotFoundError
    assert e.code == hearth.StatusCode.NOT_FOUND and e.message == "x.gguf: no such file"
    assert str(e) == "x.gguf: no such file"
    e = hearth.errors._from_status(99, "from the future")
    assert type(e) is hearth.Error and e.code == hearth.StatusCode.UNKNOWN
    import pickle

    e2 = pickle.loads(pickle.dumps(hearth.InvalidArgumentError("bad", 3)))
    assert type(e2) is hearth.InvalidArgumentError and e2.message == "bad" and e2.code == 3
