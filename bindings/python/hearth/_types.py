"""Plain data types of the hearth API: parameters in, descriptions out.

They are frozen dataclasses, so they can be shared between threads, used as
dict keys, compared and printed. :class:`SamplingParams` is the one that is
passed *into* hearth; the rest describe what hearth found.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from hearth import _hearth
from hearth.errors import InvalidArgumentError

_INT32 = (-(2**31), 2**31 - 1)
_UINT64_MAX = 2**64 - 1


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    value = int(value)
    if not lo <= value <= hi:
        raise InvalidArgumentError(f"{name} = {value} is outside [{lo}, {hi}]")
    return value


def _check_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise InvalidArgumentError(f"{name} is NaN")
    return value


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen (``hearth_sampling_params``).

    The chain runs in this order: repetition penalties (over the last
    ``penalty_last_n`` tokens), top-k, top-p, min-p, temperature, then a
    seeded draw. ``temperature <= 0`` is greedy: argmax, deterministic.
    The same seed, model and prompt give the same text.

    Invalid combinations (``top_p`` outside (0, 1], a negative temperature
    that is not greedy, …) raise :class:`hearth.InvalidArgumentError` when the
    object is made, with the C library's message.

    Attributes:
        temperature: softmax temperature; ``<= 0`` means greedy.
        top_k: keep the k most likely tokens; ``<= 0`` disables.
        top_p: keep the smallest set whose probability reaches p; 1 disables.
        min_p: drop tokens below ``min_p`` × the top probability; 0 disables.
        repeat_penalty: CTRL-style penalty on repeated tokens; 1.0 is off.
        presence_penalty: subtracted once from every token already seen.
        frequency_penalty: subtracted per occurrence of a token already seen.
        penalty_last_n: how many recent tokens the penalties look at; -1 is
            the whole context.
        seed: seed of the draw (0 … 2**64-1).
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    penalty_last_n: int = 64
    seed: int = 0xC0FFEE

    def __post_init__(self) -> None:
        fix = object.__setattr__  # frozen: normalise numbers to float/int once
        for name in ("temperature", "top_p", "min_p", "repeat_penalty", "presence_penalty",
                     "frequency_penalty"):
            fix(self, name, _check_float(name, getattr(self, name)))
        fix(self, "top_k", _check_int("top_k", self.top_k, *_INT32))
        fix(self, "penalty_last_n", _check_int("penalty_last_n", self.penalty_last_n, *_INT32))
        fix(self, "seed", _check_int("seed", self.seed, 0, _UINT64_MAX))
        # The C library is the judge of what is valid; ask it now rather than
        # in the middle of a generation.
        _hearth.check_sampling(self)

    def replace(self, **changes: object) -> "SamplingParams":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def greedy(cls) -> "SamplingParams":
        """Deterministic argmax decoding (``temperature=0``)."""
        return cls(temperature=0.0)


class StopReason(enum.IntEnum):
    """Why a generation ended (``hearth_stop_reason``)."""

    MAX_TOKENS = 0
    EOG = 1  #: the model produced an end-of-generation token
    STRING = 2  #: a stop string appeared (it is not part of the text)
    CALLBACK = 3  #: the reader stopped early (e.g. broke out of a stream)
    CONTEXT_FULL = 4  #: the session's context filled up
    CONSTRAINT = 5  #: the constraint (``ban=``/``constraint=``) allowed no token
    CANCELLED = 6  #: (engine) :meth:`hearth.Request.cancel`, or the engine was closed
    ERROR = 7  #: (engine) the request failed; its iterator raised the error


@dataclass(frozen=True)
class GenerationResult:
    """Figures of one generation (``hearth_generate_result``)."""

    n_prompt_tokens: int
    n_generated_tokens: int
    stop_reason: StopReason
    prompt_seconds: float
    generate_seconds: float

    @property
    def tokens_per_second(self) -> float:
        """Generation speed, prompt processing excluded (0 when unknown)."""
        if self.generate_seconds <= 0:
            return 0.0
        return self.n_generated_tokens / self.generate_seconds

    @classmethod
    def _from_tuple(cls, t: Tuple[Any, ...]) -> "GenerationResult":
        return cls(int(t[0]), int(t[1]), StopReason(t[2]), float(t[3]), float(t[4]))


@dataclass(frozen=True)
class DeviceInfo:
    """A device of a loaded plugin (``hearth_device_info``).

    ``name`` is what ``hearth.Model(..., device=name)`` takes: ``"cpu"``,
    ``"cuda:0"`` …; memory figures are bytes (0 when unknown). ``arch`` is
    the device architecture (``"sm_90"``, ``"gfx90a"``, ``"x86-64+avx2"``),
    ``simd_width`` its warp/wavefront width (a CPU's float vector lanes).
    """

    name: str
    plugin: str
    vendor: str
    description: str
    memory_total: int
    memory_free: int
    arch: str = ""
    simd_width: int = 0
    compute_units: int = 0


@dataclass(frozen=True)
class PluginInfo:
    """A plugin file the runtime looked at (``hearth_plugin_info``).

    ``load_error`` is None when it loaded, else why not; ``probe_score`` 0
    means it found no usable device here, and ``probe_reason`` says why.
    """

    name: str
    path: str
    version: str
    abi_major: int
    abi_minor: int
    probe_score: int
    load_error: Optional[str]
    probe_reason: Optional[str] = None


class TokenizerKind(enum.IntEnum):
    """``HEARTH_TOKENIZER_*``."""

    UNKNOWN = 0
    SPM = 1  #: SentencePiece-style (llama, gemma)
    BPE = 2  #: byte-level BPE (gpt2, qwen2, llama3)


@dataclass(frozen=True)
class ModelInfo:
    """What a model is (``hearth_model_info``).

    Attributes:
        architecture: ``"llama"``, ``"qwen2"``, ``"gemma3"`` …
        name: ``general.name`` from the file, or ``""``.
        quantization: weight formats, e.g. ``"Q4_K (mostly), Q6_K, F32"``.
        tokenizer: a description, e.g. ``"llama (SentencePiece BPE)"``.
        device: where the weights were placed.
        n_params: parameter count.
        file_size: bytes.
        token_bos, token_eos: ids, or -1 when the model has none.
    """

    architecture: str
    name: str
    quantization: str
    tokenizer: str
    device: str
    n_params: int
    file_size: int
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    token_bos: int
    token_eos: int
    tokenizer_kind: TokenizerKind

    @classmethod
    def _from_dict(cls, d: Dict[str, Any]) -> "ModelInfo":
        d = dict(d)
        kind = d.pop("tokenizer_kind")
        try:
            d["tokenizer_kind"] = TokenizerKind(kind)
        except ValueError:
            d["tokenizer_kind"] = TokenizerKind.UNKNOWN
        return cls(**d)


__all__ = [
    "SamplingParams",
    "StopReason",
    "GenerationResult",
    "DeviceInfo",
    "PluginInfo",
    "TokenizerKind",
    "ModelInfo",
]
