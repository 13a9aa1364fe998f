"""LoRA fine-tuning: train an adapter on a model's own data, in this process.

:func:`hearth.finetune` trains and returns a :class:`hearth.Adapter` ready for
``model.generate(..., adapters=[adapter])``; :meth:`hearth.Model.trainer`
gives a :class:`Trainer` to step through yourself (an iterator of
:class:`TrainStep` metrics), evaluate, save and take the adapter from. The
base model is never modified (quantized ones included); only the LoRA A/B
tensors and their AdamW state are trained, on the model's device, with the
GIL released. docs/finetune.md has the method, docs/python.md the options.
"""

from __future__ import annotations

import math
import numbers
import os
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np

from hearth import _hearth
from hearth._adapter import Adapter
from hearth._dataset import Dataset
from hearth._runtime import PathLike, _fspath_bytes
from hearth._types import _check_int as _int
from hearth.errors import FailedPreconditionError, InvalidArgumentError

if TYPE_CHECKING:
    from hearth._model import Model

_UINT32_MAX = 2**32 - 1
_UINT64_MAX = 2**64 - 1
_SCHEDULES = {"constant": 0, "linear": 1, "cosine": 2}  # HEARTH_SCHEDULE_*
_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")

#: Training data: a JSONL path (tokenized with ``ctx`` as the longest
#: example) or a :class:`hearth.Dataset` already loaded for the model.
DataSpec = Union[Dataset, PathLike]


@dataclass(frozen=True)
class TrainStep:
    """What one optimizer step did.

    Attributes:
        step: optimizer steps done, this one included (1-based).
        total: steps the whole run takes.
        epoch: 0-based epoch this step belongs to.
        loss: mean loss over the step's trained tokens.
        eval_loss: mean loss over the eval split, computed after the last
            step of each epoch when there is an eval split; else None.
        lr: the learning rate this step used.
        grad_norm: the global gradient norm before clipping.
        tokens: tokens the step ran (padding excluded).
        trained_tokens: tokens its loss counted.
        tokens_per_s: ``tokens`` over the step's wall time (its evaluation
            excluded).
    """

    step: int
    total: int
    epoch: int
    loss: float
    eval_loss: Optional[float]
    lr: float
    grad_norm: float
    tokens: int
    trained_tokens: int
    tokens_per_s: float


def _float(name: str, value: object, lo: float, hi: float, *, lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo):
        bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise InvalidArgumentError(f"{name} must be finite and in {bound}, got {value}")
    return value


def _targets(targets: object) -> str:
    if isinstance(targets, str):
        names = [t.strip() for t in targets.split(",")]
    elif isinstance(targets, Iterable):
        names = list(targets)
        for t in names:
            if not isinstance(t, str):
                raise TypeError(f"targets must be strings, not {type(t).__name__}")
    else:
        raise TypeError(f"targets must be a str or an iterable of str, not "
                        f"{type(targets).__name__}")
    if not names or any(not t or "," in t or "\0" in t for t in names):
        raise InvalidArgumentError(f"targets must name projections such as {', '.join(_TARGETS)}"
                                   f" (or 'all'), got {targets!r}")
    return ",".join(names)


class Trainer:
    """Trains a LoRA adapter on a model (``hearth_trainer``), made by
    :meth:`hearth.Model.trainer`.

    Iterating over it (or over :meth:`steps`) runs the remaining optimizer
    steps and yields a :class:`TrainStep` after each; :meth:`run` does the
    same with an optional callback. :attr:`losses` is the loss curve so far.
    One thread at a time: a second concurrent call raises
    :class:`hearth.FailedPreconditionError`. It keeps its model alive.

    Example::

        t = model.trainer("notes.jsonl", rank=8, epochs=2, eval_split=0.1)
        for s in t:
            print(f"{s.step}/{s.total} loss {s.loss:.3f} {s.tokens_per_s:.0f} tok/s")
        t.save("ward-adapter")
        print(model.generate("Summary:", adapters=[t.adapter()]))
    """

    _t: Any
    _model: "Model"
    _losses: List[float]
    _eval_losses: List[float]
    _lock: threading.Lock
    _options: dict

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use hearth.Model.trainer(data, ...) or hearth.finetune(model, data, ...)")

    @classmethod
    def _create(cls, model: "Model", data: DataSpec, *, rank: int = 16, alpha: float = 32.0,
                rslora: bool = False,
                targets: Union[str, Iterable[str]] = _TARGETS, epochs: int = 1,
                lr: float = 2e-4, batch: int = 1, grad_accum: int = 1,
                ctx: Optional[int] = None, truncate: bool = False, eval_split: float = 0.0,
                seed: int = 42, schedule: str = "linear", warmup: int = 0, clip: float = 1.0,
                weight_decay: float = 0.0, betas: Tuple[float, float] = (0.9, 0.999),
                eps: float = 1e-8, threads: Optional[int] = None,
                init_adapter: Optional[PathLike] = None,
                lora_dropout: float = 0.0, bf16: bool = False) -> "Trainer":
        opts = dict(rank=_int("rank", rank, 1, 65536),
                    alpha=_float("alpha", alpha, -3.4e38, 3.4e38),
                    use_rslora=bool(rslora), targets=_targets(targets),
                    lr=_float("lr", lr, 0.0, 1e3),
                    eps=_float("eps", eps, 0.0, 1.0, lo_open=True),
                    weight_decay=_float("weight_decay", weight_decay, 0.0, 1e3),
                    warmup_steps=_int("warmup", warmup, 0, _UINT32_MAX),
                    max_grad_norm=_float("clip", clip, 0.0, 3.4e38),
                    batch=_int("batch", batch, 1, _UINT32_MAX),
                    grad_accum=_int("grad_accum", grad_accum, 1, _UINT32_MAX),
                    epochs=_int("epochs", epochs, 1, _UINT32_MAX),
                    eval_split=_float("eval_split", eval_split, 0.0, 0.5),
                    seed=_int("seed", seed, 0, _UINT64_MAX),
                    n_threads=0 if threads is None else _int("threads", threads, 1, 4096),
                    init_adapter=b"" if init_adapter is None
                    else _fspath_bytes("init_adapter", init_adapter),
                    lora_dropout=_float("lora_dropout", lora_dropout, 0.0, 1.0),
                    bf16=bool(bf16))
        if opts["alpha"] == 0:
            raise InvalidArgumentError("alpha must be non-zero (the LoRA scale is alpha / rank)")
        if not isinstance(schedule, str) or schedule not in _SCHEDULES:
            raise InvalidArgumentError(f"schedule must be one of {', '.join(_SCHEDULES)}, "
                                       f"got {schedule!r}")
        opts["schedule"] = _SCHEDULES[schedule]
        if (not isinstance(betas, (tuple, list)) or len(betas) != 2):
            raise InvalidArgumentError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        opts["beta1"] = _float("betas[0]", betas[0], 0.0, 1.0)
        opts["beta2"] = _float("betas[1]", betas[1], 0.0, 1.0)
        if isinstance(data, Dataset):
            if ctx is not None or truncate:
                raise InvalidArgumentError("ctx and truncate apply when data is a path; this "
                                           "hearth.Dataset was already loaded with its own limit")
            if data.model is not model:
                raise InvalidArgumentError("data was loaded for another hearth.Model; datasets "
                                           "are tokenized for one model")
            dataset = data
        elif isinstance(data, (str, bytes, os.PathLike)):
            dataset = model.load_dataset(data, max_tokens=ctx, truncate=truncate)
        else:
            raise TypeError(f"data must be a path or a hearth.Dataset, not {type(data).__name__}")
        self = cls.__new__(cls)
        self._t = _hearth.Trainer(model._m, dataset._d, **opts)
        self._model = model
        self._losses = []
        self._eval_losses = []
        self._lock = threading.Lock()
        self._options = dict(opts, schedule=schedule, data=dataset.path)
        return self

    # -- state -----------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> Any:
        if not self._lock.acquire(blocking=False):
            raise FailedPreconditionError("this hearth.Trainer is in use by another call or "
                                          "thread (one at a time)")
        try:
            return fn()
        finally:
            self._lock.release()

    @property
    def step_count(self) -> int:
        """Optimizer steps done so far."""
        return self._t.info()["step"]

    @property
    def total_steps(self) -> int:
        """Steps the whole run takes: epochs x ceil(n_train / (batch x grad_accum))."""
        return self._t.info()["total_steps"]

    @property
    def done(self) -> bool:
        """True once every epoch has run."""
        info = self._t.info()
        return info["step"] >= info["total_steps"]

    @property
    def n_train(self) -> int:
        """Examples trained on."""
        return self._t.info()["n_train"]

    @property
    def n_eval(self) -> int:
        """Examples held out for :meth:`evaluate`."""
        return self._t.info()["n_eval"]

    @property
    def losses(self) -> np.ndarray:
        """The loss of every step so far (float64, a copy)."""
        return np.array(self._losses, dtype=np.float64)

    @property
    def eval_losses(self) -> np.ndarray:
        """The eval losses computed so far (float64, a copy), in order."""
        return np.array(self._eval_losses, dtype=np.float64)

    @property
    def model(self) -> "Model":
        """The :class:`hearth.Model` being adapted."""
        return self._model

    # -- training --------------------------------------------------------------

    def step(self) -> TrainStep:
        """Runs one optimizer step (``batch x grad_accum`` examples); after the
        last step of an epoch it also evaluates when there is an eval split.

        Raises:
            hearth.OutOfRangeError: every epoch is done.
        """
        def run() -> TrainStep:
            start = time.perf_counter()
            m = self._t.step()
            seconds = time.perf_counter() - start
            self._losses.append(m["loss"])
            eval_loss = None
            steps_per_epoch = max(1, m["total_steps"] // max(1, self._options["epochs"]))
            epoch_end = m["step"] % steps_per_epoch == 0 or m["step"] == m["total_steps"]
            if epoch_end and self._t.info()["n_eval"] > 0:
                eval_loss = self._t.evaluate()
                self._eval_losses.append(eval_loss)
            return TrainStep(step=m["step"], total=m["total_steps"], epoch=m["epoch"],
                             loss=m["loss"], eval_loss=eval_loss, lr=m["lr"],
                             grad_norm=m["grad_norm"], tokens=m["n_tokens"],
                             trained_tokens=m["n_trained"],
                             tokens_per_s=m["n_tokens"] / seconds if seconds > 0 else 0.0)
        return self._call(run)

    def steps(self) -> Iterator[TrainStep]:
        """Yields a :class:`TrainStep` after each remaining step. Breaking out
        of the loop stops training there; iterating again continues."""
        while not self.done:
            yield self.step()

    def __iter__(self) -> Iterator[TrainStep]:
        return self.steps()

    def run(self, callback: Optional[Callable[[TrainStep], Optional[bool]]] = None) -> "Trainer":
        """Runs the remaining steps. ``callback`` (optional) gets each
        :class:`TrainStep`; returning ``False`` (not merely a falsy value)
        stops training after that step. Returns self."""
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, not {type(callback).__name__}")
        for s in self.steps():
            if callback is not None and callback(s) is False:
                break
        return self

    def evaluate(self) -> float:
        """Mean loss per trained token over the eval split with the adapter as
        trained so far; NaN when there is no eval split."""
        return self._call(self._t.evaluate)

    def save(self, dir: PathLike, *, checkpoint: bool = False) -> str:
        """Writes the adapter as a PEFT directory (``adapter_config.json`` +
        ``adapter_model.safetensors``, created if missing), each file
        atomically (temp file, fsync, rename). Loadable with
        :meth:`hearth.Model.load_adapter`, ``hearth generate --lora`` and PEFT.

        With ``checkpoint=True`` it also writes ``hearth-checkpoint.bin``
        (AdamW state, step, data order) that :meth:`resume` goes on from.
        Returns the directory."""
        raw = _fspath_bytes("dir", dir)
        if checkpoint:
            self._call(lambda: self._t.save_checkpoint(raw))
        else:
            self._call(lambda: self._t.save(raw))
        return os.fsdecode(dir)

    def save_gguf(self, path: PathLike, *, dtype: str = "f32") -> str:
        """Writes the adapter as one GGUF LoRA file (llama.cpp's layout, so
        llama.cpp's ``--lora`` reads it too; hearth's provenance record under
        ``hearth.provenance``), atomically. ``dtype``: "f32" or "f16".
        Returns the path."""
        raw = _fspath_bytes("path", path)
        if dtype not in ("f32", "f16"):
            raise InvalidArgumentError(f"dtype must be 'f32' or 'f16', got {dtype!r}")
        self._call(lambda: self._t.save_gguf(raw, dtype.encode()))
        return os.fsdecode(path)

    def resume(self, dir: PathLike) -> "Trainer":
        """Goes on from the checkpoint ``save(dir, checkpoint=True)`` (or
        ``hearth finetune`` on Ctrl-C / ``--max-steps``) wrote. This trainer
        must be made from the same model, data and options: the run then
        ends with the same adapter as one that never stopped. The loss
        curve (:attr:`losses`) starts afresh. Returns self.

        Raises:
            hearth.NotFoundError: ``dir`` holds no checkpoint.
            hearth.FailedPreconditionError: it was written by a run with other
                settings (the message names the first that differs).
            hearth.DataLossError: the file is damaged.
        """
        raw = _fspath_bytes("dir", dir)
        self._call(lambda: self._t.resume(raw))
        return self

    def adapter(self) -> Adapter:
        """The adapter as trained so far, bound to the model and ready for
        ``adapters=[...]``; later steps do not change it."""
        return Adapter._from_handle(self._model, self._call(self._t.adapter))

    def __repr__(self) -> str:
        info = self._t.info()
        return (f"<hearth.Trainer step {info['step']}/{info['total_steps']}, "
                f"{info['n_train']} train / {info['n_eval']} eval examples, "
                f"rank {self._options['rank']}>")


def finetune(model: "Model", data: DataSpec, *, out: Optional[PathLike] = None,
             gguf: Optional[PathLike] = None,
             callback: Optional[Callable[[TrainStep], Optional[bool]]] = None,
             **options: Any) -> Adapter:
    """Trains a LoRA adapter on ``data`` and returns it, ready for
    ``model.generate(..., adapters=[adapter])``.

    Args:
        model: the base :class:`hearth.Model` (any weight type it loads).
        data: a JSONL path (the records :meth:`hearth.Model.load_dataset`
            reads) or a :class:`hearth.Dataset` loaded for ``model``.
        out: when given, the adapter is also saved there as a PEFT directory.
        gguf: when given, the adapter is also saved there as a GGUF LoRA file.
        callback: called with each :class:`TrainStep`; return ``False`` to stop.
        **options: as :meth:`hearth.Model.trainer`: ``rank`` (16), ``alpha``
            (32), ``rslora``, ``targets`` (q,k,v,o,gate,up,down), ``epochs``
            (1), ``lr`` (2e-4), ``batch`` (1), ``grad_accum`` (1), ``ctx``,
            ``truncate``, ``eval_split`` (0), ``seed`` (42), ``schedule``
            ("linear" | "cosine" | "constant"), ``warmup`` (0), ``clip`` (1.0),
            ``weight_decay`` (0), ``betas`` ((0.9, 0.999)), ``eps`` (1e-8),
            ``threads``, ``init_adapter`` (an adapter directory to continue
            training: same targets, rank and alpha), ``lora_dropout`` (0),
            ``bf16`` (False).

    Raises:
        hearth.InvalidArgumentError: a bad option, malformed data, a target
            the model lacks, nothing to train (the message names it).
        hearth.UnimplementedError: the device lacks a backward op.
    """
    from hearth._model import Model

    if not isinstance(model, Model):
        raise TypeError(f"model must be a hearth.Model, not {type(model).__name__}")
    trainer = model.trainer(data, **options)
    trainer.run(callback)
    if out is not None:
        trainer.save(out)
    if gguf is not None:
        trainer.save_gguf(gguf)
    return trainer.adapter()


__all__ = ["Trainer", "TrainStep", "finetune"]
