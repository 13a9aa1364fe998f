"""hearth: run open language models on your own hardware.

    import hearth
    print(hearth.devices())
    model = hearth.Model("model.gguf", device="cpu", threads=4)
    print(model.generate("The capital of France is", max_tokens=32, temperature=0))
    for piece in model.stream("Write a haiku about rain", max_tokens=64, seed=1):
        print(piece, end="", flush=True)
    with model.session(ctx=4096) as s:      # multi-turn: the context persists
        s.feed(model.tokenize("hello"))
        logits = s.logits()                 # numpy float32, shape (n_vocab,)
    notes = model.load_adapter("lora/notes")  # LoRA: a PEFT directory or a GGUF file
    print(model.generate("Summary:", adapters=[(notes, 0.8)]))
    data = model.load_dataset("notes.jsonl")  # training data: ids + what the loss trains
    ward = hearth.finetune(model, "notes.jsonl", rank=8, epochs=2)  # train a LoRA adapter
    print(model.generate("Summary:", adapters=[ward]))
    with hearth.Engine(model, n_seq=8) as engine:  # many requests, batched
        req = engine.submit("Hello", max_tokens=32)  # iterate it (for / async for)
        print(req.text(), req.result.finish_reason)

The package is a client of hearth's C ABI (hearth.h). Compute releases the
GIL; a Model may be shared by threads, each with its own Session. Errors are
subclasses of hearth.Error (see hearth.errors).
"""

from hearth import _hearth
from hearth._adapter import Adapter, AdapterTarget
from hearth._convert import convert, quantize
from hearth._dataset import Dataset, Example
from hearth._engine import Engine, EngineStats, Request, RequestEvent, RequestResult
from hearth._model import Model
from hearth._runtime import Runtime, default_runtime, devices, plugins
from hearth._sampler import Sampler
from hearth._session import Session
from hearth._trainer import Trainer, TrainStep, finetune
from hearth._types import (
    DeviceInfo,
    GenerationResult,
    ModelInfo,
    PluginInfo,
    SamplingParams,
    StopReason,
    TokenizerKind,
)
from hearth.errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    Error,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PermissionDeniedError,
    ResourceExhaustedError,
    StatusCode,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    UnknownError,
)

#: Version of the loaded libhearth, e.g. "0.1.0".
__version__: str = _hearth.version_string()


def abi_version() -> "tuple[int, int]":
    """(major, minor) of the C ABI of the loaded libhearth."""
    return tuple(_hearth.abi_version())  # type: ignore[return-value]


__all__ = [
    "convert",
    "quantize",
    "Model",
    "Session",
    "Engine",
    "Request",
    "RequestEvent",
    "RequestResult",
    "EngineStats",
    "Adapter",
    "AdapterTarget",
    "Dataset",
    "Example",
    "Trainer",
    "TrainStep",
    "finetune",
    "Sampler",
    "Runtime",
    "default_runtime",
    "devices",
    "plugins",
    "abi_version",
    "SamplingParams",
    "GenerationResult",
    "StopReason",
    "ModelInfo",
    "DeviceInfo",
    "PluginInfo",
    "TokenizerKind",
    "StatusCode",
    "Error",
    "CancelledError",
    "UnknownError",
    "InvalidArgumentError",
    "DeadlineExceededError",
    "NotFoundError",
    "AlreadyExistsError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "FailedPreconditionError",
    "AbortedError",
    "OutOfRangeError",
    "UnimplementedError",
    "InternalError",
    "UnavailableError",
    "DataLossError",
    "UnauthenticatedError",
]
