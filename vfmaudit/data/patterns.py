"""Which files an argument names: a file, a folder of them, a brace pattern or a glob, local or remote."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from vfmaudit.data.storage import (expand_braces, filesystem, has_pattern, is_url, local_path, missing_message,
                                    store_errors)
from vfmaudit.errors import VfmauditError


def _strip_suffix(name: str, suffixes: tuple[str, ...]) -> str:
    low = name.lower()
    for s in sorted(suffixes, key=len, reverse=True):
        if low.endswith(s):
            return name[:-len(s)]
    return name


def split_name(url: str, suffixes: tuple[str, ...]) -> str:
    """A shard's readable name: its file name without the suffix (shard-000001)."""
    return _strip_suffix(posixpath.basename(url.rstrip("/")), suffixes)


def _local_entries(folder: str) -> list[str] | None:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return None


def folder_entries(spec: str, options) -> list[str] | None:
    """The names directly inside a folder (None: it is no folder). Remote: one listing call."""
    if not is_url(spec):
        path = Path(local_path(spec)).expanduser()
        return _local_entries(str(path)) if path.is_dir() else None
    fs, path = filesystem(spec, options.storage_options)
    with store_errors(spec):
        if not fs.isdir(path):
            return None
        return sorted(posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False))


def url_of(spec: str, fs_path: str) -> str:
    """The listed path as the user would write it (the URL's scheme kept)."""
    if not is_url(spec):
        return fs_path
    scheme = spec.split("://", 1)[0]
    if fs_path.startswith(scheme + "://"):
        return fs_path
    if scheme in ("http", "https"):
        return fs_path
    return f"{scheme}://{fs_path}"


def list_matching(spec: str, suffixes: tuple[str, ...], options, claim_only: bool = False) -> list[str] | bool:
    """The files a spec names that end in one of `suffixes`, sorted; claim_only: whether the spec's
    form is this kind's (a file or a pattern with the suffix, or a folder holding such files).
    A pattern that matches nothing, a missing file and a folder without such files are one line."""
    low = spec.lower().rstrip("/")
    if has_pattern(spec):
        if claim_only:
            return low.endswith(suffixes)
        return _expand(spec, suffixes, options)
    if low.endswith(suffixes):
        if claim_only:
            return True
        fs, path = filesystem(spec, options.storage_options)
        with store_errors(spec):
            exists = fs.isfile(path)
        if not exists:
            with store_errors(spec):
                message = missing_message(spec, fs, path)
            raise VfmauditError(message, param="inputs")
        return [spec if is_url(spec) else path]
    entries = folder_entries(spec, options)
    if claim_only:
        return entries is not None and any(e.lower().endswith(suffixes) for e in entries)
    fs, path = filesystem(spec, options.storage_options)
    with store_errors(spec):
        found = sorted(p for p in fs.find(path) if p.lower().endswith(suffixes)
                       and not posixpath.basename(p).startswith("."))
    if not found:
        raise VfmauditError(f"{spec} holds no {'/'.join(suffixes)} file", param="inputs")
    return [url_of(spec, p) for p in found]


def _expand(spec: str, suffixes: tuple[str, ...], options) -> list[str]:
    candidates = expand_braces(spec)
    fs, _ = filesystem(candidates[0], options.storage_options)
    found, missing = [], []
    with store_errors(spec):
        for c in candidates:
            _, path = filesystem(c, options.storage_options)
            if any(ch in c for ch in "*?["):
                found += [url_of(c, p) for p in sorted(fs.glob(path)) if p.lower().endswith(suffixes)]
            elif fs.isfile(path):
                found.append(c if is_url(c) else path)
            else:
                missing.append(c)
    if not found:
        raise VfmauditError(f"the pattern {spec} matches no file ({len(candidates)} name(s) tried"
                            + (f", e.g. {missing[0]}" if missing else "") + "); check the pattern and the path",
                            param="inputs")
    if missing:
        raise VfmauditError(f"{len(missing)} of the {len(candidates)} shards of {spec} do not exist (the first: "
                            f"{missing[0]}); fix the pattern's range, or pass the shards that exist", param="inputs")
    return found
