#!/usr/bin/env python3
"""Runs a command with its stderr on a pseudo-terminal, as a user at a terminal
would, and prints what it wrote there to stdout with the control characters
made visible: carriage return as <CR>, ESC as <ESC>. Its stdout goes to this
script's stdout unchanged (first, then the terminal's text); the exit code is
the command's.

Used by the cli_progress_* tests: under ctest stderr is a pipe, so the
progress line (drawn only on a terminal) is tested here.

Usage: run_in_pty.py [--columns N] -- COMMAND [ARG...]
"""

import argparse
import fcntl
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--columns", type=int, default=200)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        ap.error("no command")

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, args.columns, 0, 0))
    # No "\n" -> "\r\n" translation: every <CR> shown is the command's own.
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    stdout = tempfile.TemporaryFile()  # a file: a full pipe could block the command
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=slave,
                            close_fds=True)
    os.close(slave)
    terminal = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not chunk:
            break
        terminal += chunk
    rc = proc.wait()
    os.close(master)
    stdout.seek(0)
    text = terminal.decode("utf-8", "replace").replace("\r", "<CR>").replace("\x1b", "<ESC>")
    sys.stdout.write(stdout.read().decode("utf-8", "replace"))
    sys.stdout.write(text)
    return rc


if __name__ == "__main__":
    sys.exit(main())
