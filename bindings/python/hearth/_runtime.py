"""Runtimes: the loaded plugins and the devices they offer.

Most programs never make one: :func:`hearth.devices` and :class:`hearth.Model`
use a process-wide default runtime, created on first use, that discovers
plugins the standard way (``HEARTH_PLUGIN_PATH``, then the ``hearth/plugins``
folder next to libhearth). Make a :class:`Runtime` yourself to load plugins
from somewhere else or to change the log level.
"""

from __future__ import annotations

import os
import threading
from typing import List, Optional, Sequence, Union

from hearth import _hearth
from hearth._types import DeviceInfo, PluginInfo
from hearth.errors import InvalidArgumentError

PathLike = Union[str, "os.PathLike[str]"]


def _fspath_bytes(name: str, path: object) -> bytes:
    """A path as the bytes the C library sees; NUL bytes are refused (C would
    silently cut the path there)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"{name} must be a str or os.PathLike, not {type(path).__name__}")
    raw = os.fsencode(path)
    if b"\0" in raw:
        raise InvalidArgumentError(f"{name} contains a NUL character: {path!r}")
    return raw


class Runtime:
    """A set of loaded plugins and their devices (``hearth_runtime``).

    Args:
        plugin_path: plugin files or folders to load first; a path or a
            sequence of paths.
        explicit_only: load only ``plugin_path`` (skip ``HEARTH_PLUGIN_PATH``
            and the install's plugin folder).
        log_level: 0 errors, 1 warnings (default), 2 info, 3 debug; messages go
            to stderr.

    A runtime is immutable and may be shared by threads. Models keep their
    runtime alive, so it may be dropped before them.
    """

    def __init__(
        self,
        plugin_path: Union[PathLike, Sequence[PathLike], None] = None,
        *,
        explicit_only: bool = False,
        log_level: int = 1,
    ) -> None:
        joined: Optional[bytes] = None
        if plugin_path is not None:
            paths = [plugin_path] if isinstance(plugin_path, (str, bytes, os.PathLike)) else list(
                plugin_path)
            joined = b":".join(_fspath_bytes("plugin_path", p) for p in paths)
        if isinstance(log_level, bool) or not isinstance(log_level, int):
            raise TypeError(f"log_level must be an int, not {type(log_level).__name__}")
        if not 0 <= log_level <= 3:
            raise InvalidArgumentError(f"log_level = {log_level} is outside [0, 3]")
        self._rt = _hearth.Runtime(joined, bool(explicit_only), log_level)

    def devices(self) -> List[DeviceInfo]:
        """Devices of every plugin that can run here, best first."""
        return [DeviceInfo(*t) for t in self._rt.devices()]

    def plugins(self) -> List[PluginInfo]:
        """Every plugin file looked at, including those that failed to load."""
        return [PluginInfo(*t) for t in self._rt.plugins()]

    def __repr__(self) -> str:
        return f"<hearth.Runtime devices={[d.name for d in self.devices()]}>"


_default: Optional[Runtime] = None
_default_lock = threading.Lock()


def default_runtime() -> Runtime:
    """The process-wide runtime (created, and plugins discovered, on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Runtime()
        return _default


def devices(runtime: Optional[Runtime] = None) -> List[DeviceInfo]:
    """Every device of every loaded plugin, best first.

    >>> [d.name for d in hearth.devices()]
    ['cpu']
    """
    return (runtime or default_runtime()).devices()


def plugins(runtime: Optional[Runtime] = None) -> List[PluginInfo]:
    """Every plugin file the runtime looked at (see ``PluginInfo.load_error``)."""
    return (runtime or default_runtime()).plugins()
