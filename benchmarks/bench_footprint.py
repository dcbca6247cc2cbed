"""The lean install against the full one: install size and time, start-up and peak memory of an
artefact audit (issue 27).

    python benchmarks/bench_footprint.py [--work DIR] [--model openclip:ViT-S-32] [--json out.json]

Makes two fresh virtual environments from a copy of this checkout's sources, with pip from the
index and cache this machine's install uses: `lean` (`pip install vfmaudit`, no extras) and `full`
(`pip install "vfmaudit[torch]"`). The full one exports --model to ONNX; then, in each, measured
side by side in one run:

- the size of the environment on disk (site-packages and all) and the number of distributions;
- `vfmaudit --help` wall time;
- start-up: `vfmaudit audit --model model.onnx` on one image, one family at one level (imports,
  session creation, one encode);
- the default artefact audit, `vfmaudit audit --model model.onnx` (built-in photographs, default
  perturbations): wall time and peak resident memory of the process (ru_maxrss from wait4).

Every command runs once untimed in each environment first (numba's cache, the page cache), then
--rounds alternated rounds (lean, full, lean, full, ...); the figures are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, table

ROOT = Path(__file__).resolve().parent.parent


def tree_mb(path: Path) -> float:
    """Bytes on disk under path (hard links and symlinks counted once), in MB."""
    seen, total = set(), 0
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total / 1e6


def timed(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit status) of one process."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory, not the largest child's so far
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code  # reaped by wait4: Popen must not wait for it again
        if code != 0:
            errors.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed ({code}): {errors.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024, code


def make_venv(where: Path, src: Path, extra: str) -> tuple[Path, float]:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True)
    target = f"{src}[{extra}]" if extra else str(src)
    subprocess.run([str(where / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", target],
                   check=True)
    return where / "bin", time.perf_counter() - start


def commands(bin_dir: Path, onnx: Path, image: Path, work: Path) -> dict[str, list[str]]:
    vfm = str(bin_dir / "vfmaudit")
    return {"help": [vfm, "--help"],
            "startup": [vfm, "audit", str(image), "--model", str(onnx), "-p", "jpeg", "--levels", "1", "-q",
                        "--overwrite", "--out", str(work / "small")],
            "default": [vfm, "audit", "--model", str(onnx), "-q", "--overwrite", "--out", str(work / "default")]}


def measure(envs: dict[str, Path], onnx: Path, image: Path, work: Path, rounds: int) -> dict[str, dict]:
    """Each environment's figures, the two alternated round by round (a busy machine hits both)."""
    runs = {name: commands(bin_dir, onnx, image, work / f"run_{name}") for name, bin_dir in envs.items()}
    for name in envs:
        (work / f"run_{name}").mkdir(exist_ok=True)
        for argv in runs[name].values():  # untimed: numba's cache and the page cache filled for both
            timed(argv, work)
    times = {name: {what: [] for what in runs[name]} for name in envs}
    peak = {name: 0.0 for name in envs}
    for _ in range(rounds):
        for name in envs:
            for what, argv in runs[name].items():
                wall, rss, _ = timed(argv, work)
                times[name][what].append(wall)
                if what == "default":
                    peak[name] = max(peak[name], rss)
    out = {}
    for name, bin_dir in envs.items():
        dists = subprocess.run([str(bin_dir / "python"), "-m", "pip", "list", "--format=json",
                                "--disable-pip-version-check"], capture_output=True, text=True, check=True).stdout
        out[name] = {"size_mb": tree_mb(bin_dir.parent), "distributions": len(json.loads(dists)),
                     "help_s": statistics.median(times[name]["help"]),
                     "startup_s": statistics.median(times[name]["startup"]),
                     "default_audit_s": statistics.median(times[name]["default"]), "default_audit_peak_rss_mb": peak[name]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="Where the two environments go (default: a temporary folder, removed)")
    ap.add_argument("--model", default="openclip:ViT-S-32")
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds of every timing (medians)")
    ap.add_argument("--reuse", action="store_true", help="keep the environments already under --work")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vfm-footprint-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        src = work / "src"
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, src / name)
        shutil.copytree(ROOT / "vfmaudit", src / "vfmaudit", ignore=shutil.ignore_patterns("__pycache__"))
        envs, install_s = {}, {}
        saved = json.loads((work / "install.json").read_text()) if args.reuse and (work / "install.json").is_file() else {}
        for name, extra in (("lean", ""), ("full", "torch")):
            if name in saved and (work / name / "bin" / "vfmaudit").is_file():
                envs[name], install_s[name] = work / name / "bin", saved[name]
                continue
            shutil.rmtree(work / name, ignore_errors=True)
            envs[name], install_s[name] = make_venv(work / name, src, extra)
            print(f"{name}: installed in {install_s[name]:.0f} s", flush=True)
        (work / "install.json").write_text(json.dumps(install_s))
        onnx = work / "model.onnx"
        if not onnx.is_file():
            subprocess.run([str(envs["full"] / "vfmaudit"), "export", "onnx", "-m", args.model, "-o", str(onnx), "-q"],
                           check=True, stdout=subprocess.DEVNULL)
        image = work / "one.png"
        subprocess.run([str(envs["lean"] / "python"), "-c", "import skimage.data, PIL.Image; "
                        f"PIL.Image.fromarray(skimage.data.astronaut()).save({str(image)!r})"], check=True)
        measured = measure(envs, onnx, image, work, args.rounds)
        results = {name: {"install_s": install_s[name], **measured[name]} for name in envs}
        lean, full = results["lean"], results["full"]
        rows = [["install size on disk (MB)", f"{lean['size_mb']:.0f}", f"{full['size_mb']:.0f}",
                 f"{lean['size_mb'] / full['size_mb']:.2f}x"],
                ["distributions installed", str(lean["distributions"]), str(full["distributions"]), ""],
                ["install time, pip cache warm (s)", f"{lean['install_s']:.0f}", f"{full['install_s']:.0f}",
                 f"{lean['install_s'] / full['install_s']:.2f}x"],
                ["`vfmaudit --help` (s)", f"{lean['help_s']:.2f}", f"{full['help_s']:.2f}",
                 f"{lean['help_s'] / full['help_s']:.2f}x"],
                ["start-up: audit of 1 image, 1 edit (s)", f"{lean['startup_s']:.2f}", f"{full['startup_s']:.2f}",
                 f"{lean['startup_s'] / full['startup_s']:.2f}x"],
                ["default `audit --model model.onnx` (s)", f"{lean['default_audit_s']:.1f}",
                 f"{full['default_audit_s']:.1f}", f"{lean['default_audit_s'] / full['default_audit_s']:.2f}x"],
                ["its peak memory (MB RSS)", f"{lean['default_audit_peak_rss_mb']:.0f}",
                 f"{full['default_audit_peak_rss_mb']:.0f}",
                 f"{lean['default_audit_peak_rss_mb'] / full['default_audit_peak_rss_mb']:.2f}x"]]
        print(f"\n{machine()}; model {args.model} exported to ONNX\n")
        print(table(["", "lean (`pip install vfmaudit`)", "full (`vfmaudit[torch]`)", "lean / full"], rows))
        if args.json:
            args.json.write_text(json.dumps({"machine": machine(), "model": args.model, **results}, indent=2))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
