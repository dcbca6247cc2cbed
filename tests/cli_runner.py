"""Run the CLI in this process (fast: no new interpreter, models stay imported) or as a real process.

Use `run_cli` unless the test is about the process itself (exit status of the installed entry
point, a kill, a fresh interpreter's environment): then `run_process`.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args, cwd=None) -> CliRun:
    from vfmaudit.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                main([str(a) for a in args])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(old)
    return CliRun(code, stdout.getvalue(), stderr.getvalue())


def run_process(*args, cwd=None, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vfmaudit", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)
