"""LoRA adapters: low-rank (A, B) pairs beside some of a model's projections.

An adapter is loaded for one model (:meth:`hearth.Model.load_adapter`) and
attached to sessions with a scale; each target then computes
``y = W x + scale * factor * B (A x)`` (``factor`` is the file's
``alpha / r``, or ``alpha / sqrt(r)`` with rs-LoRA). The model's weights are
never modified, so one model serves many sessions with different adapters.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, List, Mapping, Optional, Tuple, Union

from hearth import _hearth
from hearth._runtime import PathLike, _fspath_bytes
from hearth.errors import InvalidArgumentError

if TYPE_CHECKING:
    from hearth._model import Model

_FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class AdapterTarget:
    """One projection an adapter modifies (``hearth_adapter_target``).

    Attributes:
        weight: the base weight, GGUF naming, e.g. ``"blk.3.attn_q.weight"``.
        source: its name in the adapter file, e.g.
            ``"model.layers.3.self_attn.q_proj"``.
        rank: r of this target (PEFT's ``rank_pattern`` may vary it).
        scale: the file's own factor for this target: ``alpha / r`` (or
            ``alpha / sqrt(r)`` with rs-LoRA); the session's scale multiplies it.
        n_in: columns of A (the projection's input width).
        n_out: rows of B (the projection's output width).
    """

    weight: str
    source: str
    rank: int
    scale: float
    n_in: int
    n_out: int


class Adapter:
    """A LoRA adapter file (``hearth_adapter``): a PEFT directory
    (``adapter_config.json`` + ``adapter_model.safetensors``, or either file)
    or a GGUF LoRA file.

    Made by :meth:`hearth.Model.load_adapter` (validated against the model and
    placed on its device, ready to attach) or by :meth:`Adapter.inspect` (the
    file alone, parsed and checked; it cannot be attached). Everything about
    it is read-only; an adapter may be shared by threads and sessions, and it
    keeps its model alive.

    Example::

        model = hearth.Model("base.gguf")
        notes = model.load_adapter("lora/notes")          # a PEFT directory
        print(model.generate("Summary:", adapters=[(notes, 0.8)]))
        with model.session(adapters=[notes]) as s:        # scale 1.0
            ...
    """

    _a: Any
    _model: Optional["Model"]
    _info: dict
    _targets: Tuple[AdapterTarget, ...]

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use hearth.Model.load_adapter(path) or hearth.Adapter.inspect(path) "
                        "to make a hearth.Adapter")

    @classmethod
    def _load(cls, model: Optional["Model"], path: PathLike,
              ignore_base: bool = False) -> "Adapter":
        raw_path = _fspath_bytes("path", path)
        self = cls.__new__(cls)
        self._a = _hearth.Adapter(model._m if model is not None else None, raw_path,
                                  bool(ignore_base))
        self._model = model
        self._info = self._a.info()
        # The adapter is immutable: read its targets once.
        self._targets = tuple(AdapterTarget(*t) for t in self._a.targets())
        return self

    @classmethod
    def _from_handle(cls, model: "Model", handle: Any) -> "Adapter":
        # An adapter made in memory (hearth.Trainer.adapter), already bound.
        self = cls.__new__(cls)
        self._a = handle
        self._model = model
        self._info = handle.info()
        self._targets = tuple(AdapterTarget(*t) for t in handle.targets())
        return self

    @classmethod
    def inspect(cls, path: PathLike) -> "Adapter":
        """Parses and checks an adapter file on its own, without a model.

        The result describes the file (rank, alpha, targets …) but cannot be
        attached to a session or merged. ``base_architecture`` is ``""`` for a
        PEFT directory (only GGUF files record it).

        Raises:
            hearth.NotFoundError: no such file or directory.
            hearth.InvalidArgumentError: the file is malformed (the message
                names the file and the tensor).
        """
        return cls._load(None, path)

    # -- description -----------------------------------------------------------

    @property
    def path(self) -> str:
        """The file or directory it was loaded from."""
        return self._info["path"]

    @property
    def format(self) -> str:
        """``"peft"`` or ``"gguf"``."""
        return self._info["format"]

    @property
    def base_architecture(self) -> str:
        """The base model's architecture (``"llama"`` …): a GGUF file's
        ``general.architecture``; for PEFT, the model's when bound, else ``""``."""
        return self._info["base_architecture"]

    @property
    def base_model(self) -> str:
        """PEFT's ``base_model_name_or_path`` or GGUF's ``general.name``; may be ``""``."""
        return self._info["base_model"]

    @property
    def rank(self) -> int:
        """r: the largest rank over the targets."""
        return self._info["rank"]

    @property
    def alpha(self) -> float:
        """``lora_alpha`` (PEFT) or ``adapter.lora.alpha`` (GGUF)."""
        return self._info["alpha"]

    @property
    def use_rslora(self) -> bool:
        """True: factor = alpha / sqrt(r) (rank-stabilized LoRA); else alpha / r."""
        return self._info["use_rslora"]

    @property
    def n_params(self) -> int:
        """Elements of every A and B."""
        return self._info["n_params"]

    @property
    def provenance(self) -> Optional[dict]:
        """For an adapter hearth trained, its provenance record (the
        ``"hearth"`` object of ``adapter_config.json``): ``base_fingerprint``
        (XXH64 of the base model's weights, see docs/finetune.md),
        ``data_hash``, ``hearth_version`` and the hyper-parameters. None for
        other adapters."""
        text = self._info["provenance"]
        return json.loads(text) if text else None

    @property
    def bound(self) -> bool:
        """True when loaded for a model (and so attachable); False for
        :meth:`inspect`."""
        return self._info["bound"]

    @property
    def targets(self) -> List[AdapterTarget]:
        """The projections it modifies, in file order by layer."""
        return list(self._targets)

    @property
    def model(self) -> Optional["Model"]:
        """The :class:`hearth.Model` it was loaded for, or None."""
        return self._model

    def __repr__(self) -> str:
        where = (f"for {os.path.basename(self._model.path)!r}" if self._model is not None
                 else "inspect-only")
        name = os.path.basename(self.path.rstrip("/")) or self.path
        return (f"<hearth.Adapter {name!r} "
                f"{self.format} r={self.rank} alpha={self.alpha:g}"
                f"{' rslora' if self.use_rslora else ''}, {len(self._targets)} targets, "
                f"{where}>")


#: What ``adapters=`` takes: adapters (scale 1.0) or (adapter, scale) pairs.
AdapterSpec = Iterable[Union[Adapter, Tuple[Adapter, float]]]


def _scale(i: int, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"adapters[{i}]: the scale must be a number, not {type(value).__name__}")
    s = float(value)
    if not math.isfinite(s) or abs(s) > _FLOAT32_MAX:
        raise InvalidArgumentError(f"adapters[{i}]: scale {s} is not a finite float32")
    return s


def adapter_pairs(adapters: Optional[AdapterSpec]) -> List[Tuple[Adapter, float]]:
    """Checks an ``adapters=`` argument: None → []; each item an Adapter
    (scale 1.0) or an (Adapter, scale) pair."""
    if adapters is None:
        return []
    if isinstance(adapters, Mapping):
        # Iterating would see the keys only and silently drop the scales.
        raise TypeError("adapters must be an iterable of hearth.Adapter or (Adapter, scale) "
                        "pairs, not a mapping (use list(d.items()))")
    if isinstance(adapters, (str, bytes, bytearray, Adapter)) or not isinstance(
            adapters, Iterable):
        hint = " (wrap it in a list: [adapter])" if isinstance(adapters, Adapter) else ""
        raise TypeError(f"adapters must be an iterable of hearth.Adapter or (Adapter, scale) "
                        f"pairs, not {type(adapters).__name__}{hint}")
    pairs: List[Tuple[Adapter, float]] = []
    for i, item in enumerate(adapters):
        if isinstance(item, Adapter):
            pairs.append((item, 1.0))
        elif (isinstance(item, (tuple, list)) and len(item) == 2
              and isinstance(item[0], Adapter)):
            pairs.append((item[0], _scale(i, item[1])))
        else:
            raise TypeError(f"adapters[{i}] must be a hearth.Adapter or an (Adapter, scale) "
                            f"pair, not {_describe(item)}")
    return pairs


def c_pairs(pairs: List[Tuple[Adapter, float]]) -> List[Tuple[Any, float]]:
    """The extension's form of checked pairs."""
    return [(a._a, s) for a, s in pairs]


def _describe(item: object) -> str:
    text = repr(item)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(item).__name__} {text}"


__all__ = ["Adapter", "AdapterTarget", "AdapterSpec"]
