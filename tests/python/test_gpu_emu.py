"""The GPU backend's kernels end to end, on the emulated GPU.

backends/gpu compiles as host C++ into an emulator plugin
(build/lib/hearth/test-plugins/libhearth-backend-gpu-emu.so, docs/gpu.md):
the same kernels the CUDA and ROCm plugins run, each GPU thread a fiber.
Through the Python API, with device="gpu-emu:0": logits of a prompt equal the
CPU plugin's, and LoRA training gives the CPU's losses and adapter.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

import hearth
from conftest import LLAMA, ROOT

EMU_DIR = pathlib.Path(hearth.__file__).resolve().parents[1] / "lib" / "hearth" / "test-plugins"
if not EMU_DIR.is_dir():  # the build tree's python/ sits beside lib/
    EMU_DIR = ROOT / "build" / "lib" / "hearth" / "test-plugins"
EMU = EMU_DIR / "libhearth-backend-gpu-emu.so"

pytestmark = pytest.mark.skipif(not EMU.is_file(), reason=f"no emulator plugin at {EMU}")

RECORDS = [
    {"prompt": "Ward 3, bed 2:", "completion": " stable, BP 120/80."},
    {"prompt": "Ward 1, bed 4:", "completion": " febrile, 38.5 C."},
]


@pytest.fixture(scope="module")
def runtime():
    return hearth.Runtime(EMU)


@pytest.fixture(scope="module")
def models(runtime):
    return (hearth.Model(LLAMA, device="cpu", runtime=runtime, threads=2),
            hearth.Model(LLAMA, device="gpu-emu:0", runtime=runtime))


def test_emulated_gpu_is_listed(runtime, models):
    assert "gpu-emu:0" in [d.name for d in runtime.devices()]
    assert [m.info.device for m in models] == ["cpu", "gpu-emu:0"]


def test_logits_match_the_cpu(models):
    cpu, gpu = models
    ids = np.array([1, 5, 9, 2, 7, 3], dtype=np.int32)
    out = []
    for m in (cpu, gpu):
        with m.session() as s:
            s.feed(ids)
            out.append(s.logits().copy())
    # Float sums in another order: 1e-4 of the logits' scale.
    np.testing.assert_allclose(out[1], out[0], rtol=0, atol=1e-4 * np.abs(out[0]).max())


def test_lora_training_matches_the_cpu(models, tmp_path):
    data = tmp_path / "notes.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    runs = []
    for m in models:
        t = m.trainer(data, rank=4, alpha=8, lr=1e-2, seed=7, epochs=2)
        list(t.steps())
        out = tmp_path / m.info.device.replace(":", "_")
        t.save(out)
        runs.append((t.losses, out))
    (cpu_losses, cpu_dir), (gpu_losses, gpu_dir) = runs
    assert cpu_losses.shape == gpu_losses.shape == (4,)
    # The loss of every step (forward, backward, AdamW on the device) agrees
    # to float rounding.
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4, atol=0)
    a = (cpu_dir / "adapter_model.safetensors").read_bytes()
    b = (gpu_dir / "adapter_model.safetensors").read_bytes()
    assert len(a) == len(b)
    ta, tb = _tensors(a), _tensors(b)
    assert ta.keys() == tb.keys() and len(ta) > 0
    # AdamW divides by sqrt(v): an element whose gradient is near zero can
    # move by a fraction of lr on float noise alone. So: nearly every element
    # to 1e-4 of the tensor's scale, and every element within a tenth of the
    # largest step the 4 updates could make (4 * lr).
    for name in ta:
        diff = np.abs(tb[name] - ta[name])
        scale = max(np.abs(ta[name]).max(), 1e-3)
        assert np.mean(diff > 1e-4 * scale) <= 0.01, name
        assert diff.max() <= 0.1 * 4 * 1e-2, name


def _tensors(blob: bytes) -> dict:
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", meta
        lo, hi = meta["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + lo:8 + n + hi], dtype=np.float32)
    return out
