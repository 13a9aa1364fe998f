"""The ``hearth`` console script: runs the hearth command shipped in the package.

A wheel carries the command as ``hearth/bin/hearth`` (its RPATH finds
``hearth/lib/libhearth.so.1`` and the plugins beside it); in a build tree
(``PYTHONPATH=build/python``) it is ``build/bin/hearth``. The process is
replaced, so exit codes, signals and Ctrl-C behave as the command's own.
"""

import os
import sys
from typing import List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))  # not realpath: the build tree symlinks


def command_path() -> str:
    """Where the ``hearth`` executable of this package is."""
    for candidate in (os.path.join(_HERE, "bin", "hearth"),
                      os.path.join(os.path.dirname(os.path.dirname(_HERE)), "bin", "hearth")):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"the hearth command is not in this package ({_HERE}/bin/hearth); "
                            "reinstall it with `pip install .` from hearth's source tree")


def main(argv: Optional[List[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        path = command_path()
    except FileNotFoundError as e:
        print(f"hearth: {e}", file=sys.stderr)
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, ["hearth"] + args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
