"""Model files in: a Hugging Face directory to GGUF (`convert`) and a GGUF
model to other weight types (`quantize`). Both wrap the C ABI
(hearth_convert, hearth_quantize; docs/convert.md)."""

from __future__ import annotations

import os
import pathlib
from typing import Callable, Optional, Union

from hearth import _hearth

PathLike = Union[str, "os.PathLike[str]"]
#: progress(index, count, tensor_name) before each tensor; return False to stop
#: (hearth.CancelledError, no file written); an exception stops and propagates.
Progress = Callable[[int, int, str], Optional[bool]]


def convert(hf_dir: PathLike, out: PathLike, *, type: str = "f16",
            progress: Optional[Progress] = None) -> pathlib.Path:
    """Converts a Hugging Face model directory (config.json, *.safetensors,
    tokenizer.json, tokenizer_config.json) of a llama, qwen2 or gemma3 model
    to one GGUF file that hearth and llama.cpp load.

    ``type`` is the weight type: "f32", "f16", "bf16", "q8_0", "q4_0",
    "q4_k", "q6_k" or "q4_k_m"; 1-D tensors stay F32. The file appears only
    when complete. Malformed or unsupported directories raise
    (hearth.NotFoundError, hearth.UnimplementedError, hearth.InvalidArgumentError)
    with the file and key named. Returns ``out``.
    """
    _hearth.convert(os.fspath(hf_dir), os.fspath(out), type, progress)
    return pathlib.Path(out)


def quantize(src: PathLike, out: PathLike, *, type: str,
             progress: Optional[Progress] = None) -> pathlib.Path:
    """Rewrites the GGUF model ``src`` with weight type ``type`` (as for
    :func:`convert`): 2-D weights are encoded from F32, F16 or BF16, other
    tensors and all metadata copied. Returns ``out``."""
    _hearth.quantize(os.fspath(src), os.fspath(out), type, progress)
    return pathlib.Path(out)
