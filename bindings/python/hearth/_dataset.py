"""Training data: a JSONL file read and tokenized for a model.

Each line is one record: ``{"text": ...}``, ``{"prompt": ..., "completion":
...}`` or ``{"messages": [{"role": ..., "content": ...}, ...]}`` (rendered in
the model's chat format). Every example becomes token ids plus a flag per id
saying whether the loss trains the model to predict it: the whole text, the
completion, or each assistant turn with its end-of-turn marker. See
docs/training-data.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

import numpy as np

from hearth import _hearth
from hearth._runtime import PathLike, _fspath_bytes
from hearth.errors import InvalidArgumentError

if TYPE_CHECKING:
    from hearth._model import Model

_UINT32_MAX = 2**32 - 1


@dataclass(frozen=True)
class Example:
    """One training example.

    Attributes:
        tokens: int32 token ids, BOS first when the model uses one.
        trained: uint8, one per id: 1 where the loss includes predicting that
            id from the ones before it (the first is always 0).
        line: the record's 1-based line in the file.
    """

    tokens: np.ndarray
    trained: np.ndarray
    line: int


class Dataset:
    """Training examples from a JSONL file (``hearth_dataset``), made by
    :meth:`hearth.Model.load_dataset`. Read-only; a sequence of
    :class:`Example`. It keeps its model alive.

    Example::

        data = model.load_dataset("notes.jsonl", max_tokens=1024)
        print(len(data), data.n_trained_tokens)
        ex = data[0]
        print(model.detokenize(ex.tokens[ex.trained == 1], render_special=True))
    """

    _d: Any
    _model: "Model"
    _info: Dict[str, int]
    _path: str

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise TypeError("use hearth.Model.load_dataset(path) to make a hearth.Dataset")

    @classmethod
    def _load(cls, model: "Model", path: PathLike, max_tokens: Optional[int],
              truncate: bool) -> "Dataset":
        if max_tokens is None:
            limit = 0
        elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise TypeError(f"max_tokens must be an int or None, not {type(max_tokens).__name__}")
        elif not 1 <= max_tokens <= _UINT32_MAX:
            raise InvalidArgumentError(f"max_tokens must be in [1, {_UINT32_MAX}], got {max_tokens}")
        else:
            limit = max_tokens
        self = cls.__new__(cls)
        self._d = _hearth.Dataset(model._m, _fspath_bytes("path", path), limit, bool(truncate))
        self._model = model
        self._info = self._d.info()
        self._path = os.fsdecode(path)
        return self

    def __len__(self) -> int:
        return self._info["n_examples"]

    def __getitem__(self, index: int) -> Example:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"dataset indices must be integers, not {type(index).__name__}")
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"example {index} is out of range for a dataset of {n}")
        tokens, trained, line = self._d.example(index)
        return Example(tokens=np.frombuffer(tokens, dtype=np.int32),
                       trained=np.frombuffer(trained, dtype=np.uint8), line=line)

    def __iter__(self) -> Iterator[Example]:
        for i in range(len(self)):
            yield self[i]

    @property
    def path(self) -> str:
        """The JSONL file."""
        return self._path

    @property
    def max_tokens(self) -> int:
        """The limit applied: the longest an example may be."""
        return self._info["max_tokens"]

    @property
    def n_tokens(self) -> int:
        """Ids over all examples."""
        return self._info["n_tokens"]

    @property
    def n_trained_tokens(self) -> int:
        """Ids the loss includes."""
        return self._info["n_trained_tokens"]

    @property
    def longest(self) -> int:
        """Ids of the longest example."""
        return self._info["longest"]

    @property
    def n_truncated(self) -> int:
        """Examples cut at ``max_tokens`` (only with ``truncate=True``)."""
        return self._info["n_truncated"]

    @property
    def kinds(self) -> Dict[str, int]:
        """Examples per record kind: ``{"text": …, "prompt_completion": …, "messages": …}``."""
        return {"text": self._info["n_text"],
                "prompt_completion": self._info["n_prompt_completion"],
                "messages": self._info["n_messages"]}

    @property
    def model(self) -> "Model":
        """The :class:`hearth.Model` it was tokenized for."""
        return self._model

    def __repr__(self) -> str:
        return (f"<hearth.Dataset {os.path.basename(self._path)!r}: {len(self)} examples, "
                f"{self.n_tokens} tokens, {self.n_trained_tokens} trained>")


__all__ = ["Dataset", "Example"]
