"""Writing result files so that a reader never sees half of one: temporary name, then rename."""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from vfmaudit.errors import ResumeMismatch, VfmauditError


def default_permissions(path: str | Path) -> None:
    """Give a file made by mkstemp (0600) the permissions a plain open() would (0666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write text under a unique temporary name in the same folder, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        default_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_output_file(path: str | Path, overwrite: bool = False, param: str = "out") -> Path:
    """Every command's rule for an output file: not a folder, and an existing file only with overwrite."""
    p = Path(path)
    if p.is_dir():
        raise VfmauditError(f"{param} {p} is a folder; pass the path of a file to write", param=param)
    if p.exists() and not overwrite:
        raise VfmauditError(f"{param} {p} exists; pass overwrite to replace it, or another {param}",
                            param=(param, "overwrite"))
    return p


def check_output_folder(path: str | Path, param: str = "out") -> Path:
    """Every command's rule for an output folder: not an existing file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise VfmauditError(f"{param} {p} is a file; pass a folder", param=param)
    return p


# fingerprint keys that are not an option's name, as the user wrote them
_FINGERPRINT_OPTIONS = {"plan": "perturbations or levels", "metrics": "the registered metrics (plugins?)",
                        "inputs": "the inputs"}


def check_resumable(previous: dict | None, current: dict, folder: Path, restart: str = "overwrite to start again",
                    restart_param: str = "overwrite") -> None:
    """Resume only a run made with the same options: otherwise one line naming each option that differs
    and how to start again (`restart`, naming the parameter `restart_param`)."""
    previous = previous or {}
    if previous == current:
        return
    changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
    named = ", ".join(f"{_FINGERPRINT_OPTIONS.get(k, k)} ({_short(previous.get(k))} then, {_short(current.get(k))} "
                      f"now)" for k in changed)
    # "continue", not "resume", where resume is the parameter named: the CLI writes a named parameter as its flag
    verb = "continue" if restart_param == "resume" else "resume"
    raise ResumeMismatch(f"cannot {verb} the run in {folder}: {named} differ; pass the same options, or {restart}",
                         param=restart_param)


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def json_safe(obj):
    """NaN and infinity as null (JSON has neither); tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(data: dict, path: str | Path) -> Path:
    """The one JSON writer: atomic, indented, NaN/inf as null, creating the folder."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2))


def read_earlier_report(path: str | Path, filename: str, needs: str, option: str, command: str) -> dict:
    """An earlier run's JSON report, given as the file or the output folder holding `filename`; one
    line naming `option` if it is unreadable or lacks the `needs` mapping."""
    p = Path(path)
    p = p / filename if p.is_dir() else p
    try:
        report = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise VfmauditError(f"{option} {path}: cannot read a {filename} ({e}); pass the output folder or "
                            f"{filename} of an earlier vfmaudit {command}", param=option.lstrip("-").replace("-", "_")
                            ) from None
    if not isinstance(report, dict) or not isinstance(report.get(needs), dict):
        raise VfmauditError(f"{option} {path} is not a vfmaudit {command} report (no {needs})",
                            param=option.lstrip("-").replace("-", "_"))
    return report


def file_sha256(path: str | Path) -> str:
    """Content hash of a file (weights, the ONNX source of an engine), read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- exclusive locks on outputs ------------------------------------------------------------------
LOCK_NAME = ".vfmaudit.lock"
_held: dict[str, list] = {}  # lock file -> [fd, depth]: a process may re-enter its own lock


class OutputInUse(VfmauditError):
    """Another process is writing the same output (its pid is in `holder`)."""

    def __init__(self, target: Path, holder: str):
        super().__init__(f"{target} is being written by another vfmaudit process (pid {holder}); wait for it "
                         f"to finish, or pass another out", param="out")
        self.target, self.holder = target, holder


class exclusive_lock:
    """Hold an OS-level exclusive lock (flock) on an output for the duration of a `with` block.

    The operating system releases it when the process ends, however it ends, so a killed run never
    leaves a lock that blocks the next one; the lock file stays and only names the last holder.
    Use `lock_folder` for a results folder and `lock_output_file` for a single output file.
    """

    def __init__(self, lock_path: Path, target: Path):
        self.path, self.target = Path(lock_path), Path(target)
        self.key = str(self.path.absolute())

    def __enter__(self) -> "exclusive_lock":
        import fcntl

        if self.key in _held:  # this process holds it already (an API call inside another)
            _held[self.key][1] += 1
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputInUse(self.target, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[self.key] = [fd, 1]
        return self

    def __exit__(self, *exc) -> None:
        entry = _held[self.key]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[self.key]
            os.close(entry[0])  # closing the descriptor releases the flock


def lock_folder(folder: str | Path) -> exclusive_lock:
    """Exclusive lock on a results folder (FOLDER/.vfmaudit.lock), for a whole run that writes it."""
    return exclusive_lock(Path(folder) / LOCK_NAME, Path(folder))


def lock_output_file(path: str | Path) -> exclusive_lock:
    """Exclusive lock on one output file (.NAME.vfmaudit.lock beside it)."""
    path = Path(path)
    return exclusive_lock(path.parent / f".{path.name}{LOCK_NAME}", path)


@dataclass
class FolderResult:
    """A job's result: its JSON report and the folder holding every output (to_json() is the report)."""

    report: dict
    out_dir: Path
    report_name: ClassVar[str] = "report.json"

    @property
    def report_path(self) -> Path:
        return self.out_dir / self.report_name

    def to_json(self) -> dict:
        return self.report
