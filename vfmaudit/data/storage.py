"""Where shards live: local paths or fsspec URLs (s3://, gs://, https://), brace patterns, the
storage options a user passes, and the one place a store's errors become one line.

The credentials are the store's own chain (for S3: the AWS environment variables, the shared
credentials file, an instance role); `AWS_ENDPOINT_URL` and `--storage-option endpoint_url=...`
point S3 at another server. No storage option value is ever written into a message or a report:
`redacted()` is what reports see.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
from pathlib import Path
from typing import Iterator

from vfmaudit.errors import VfmauditError, missing_dependency

URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+)://")
# option names whose values are secrets: never shown, even redacted reports keep only the name
_SECRET = re.compile(r"key|secret|token|password|credential|session", re.IGNORECASE)
# what a user who passes no retry settings gets on S3: an endpoint that does not answer fails in
# seconds, not after botocore's default of minutes of retries
_S3_DEFAULTS = {"config_kwargs": {"connect_timeout": 5, "retries": {"max_attempts": 2, "mode": "standard"}}}


def is_url(spec: str) -> bool:
    """A URL of a remote store; file:// and plain paths are local."""
    m = URL.match(spec)
    return bool(m) and m.group(1).lower() != "file"


def local_path(spec: str) -> str:
    return spec[len("file://"):] if spec.lower().startswith("file://") else spec


def parse_storage_options(pairs: list[str] | None) -> dict:
    """KEY=VALUE pairs to fsspec keyword arguments: values read as JSON where they parse (true, 5,
    {"a": 1}), else as text; dotted keys nest (client_kwargs.region_name=eu-west-1)."""
    options: dict = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise VfmauditError(f"storage_option takes KEY=VALUE (e.g. endpoint_url=http://127.0.0.1:9000, "
                                f"anon=true), got {pair.split('=')[0]!r}", param="storage_option")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        node = options
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise VfmauditError(f"storage_option {key} nests under {p}, which is set to a value",
                                    param="storage_option")
        node[leaf] = value
    return options


def redacted(options: dict) -> dict:
    """The options as a report may show them: secret values replaced, the rest kept."""
    return {k: (redacted(v) if isinstance(v, dict) else ("***" if _SECRET.search(k) else v))
            for k, v in options.items()}


def without_userinfo(url: str | None) -> str:
    """A URL as it may be shown: without a user:password@ part (https://user:token@host -> https://host)."""
    return re.sub(r"(?<=://)[^/@\s]*@", "", url or "")


def filesystem(spec: str, options: dict | None = None):
    """(fsspec filesystem, path inside it) for a URL or a local path; a missing store package is one line."""
    try:
        import fsspec  # noqa: PLC0415 - the data extra
    except ImportError as e:
        raise _missing(e, spec) from None
    if not is_url(spec):
        return fsspec.filesystem("file"), str(Path(local_path(spec)).expanduser())
    protocol = URL.match(spec).group(1).lower()
    kwargs = dict(options or {})
    if protocol in ("s3", "s3a"):
        for k, v in _S3_DEFAULTS.items():
            kwargs.setdefault(k, v)
        endpoint = os_environ_endpoint()
        if endpoint and "endpoint_url" not in kwargs and "endpoint_url" not in kwargs.get("client_kwargs", {}):
            kwargs["endpoint_url"] = endpoint  # explicit, so fsspec's instance cache tells endpoints apart
    try:
        fs, path = fsspec.core.url_to_fs(spec, **kwargs)
    except ImportError as e:  # fsspec: "Install s3fs to access S3"
        raise _missing(e, spec) from None
    except (TypeError, ValueError) as e:
        raise VfmauditError(f"the storage options do not suit {protocol}:// ({first_line(e)}); see --storage-option "
                            f"in --help", param="storage_option") from None
    return fs, path


def _missing(e: ImportError, spec: str) -> VfmauditError:
    found = missing_dependency(e, f"reading {spec}", "images from local folders and files")
    if found is not None:
        return found
    name = getattr(e, "name", None) or re.sub(r".*[Ii]nstall (\S+).*", r"\1", str(e))
    return VfmauditError(f"reading {spec} needs {name} (not installed here): pip install {name}")


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def store_errors(spec: str) -> Iterator[None]:
    """A store's failures (unreachable, no credentials, no bucket, denied) as one line naming `spec`."""
    try:
        yield
    except VfmauditError:
        raise
    except FileNotFoundError as e:
        raise VfmauditError(f"{spec}: not found ({first_line(e)}); check the bucket and the path") from None
    except IsADirectoryError as e:
        raise VfmauditError(f"{spec}: is a folder ({first_line(e)}); pass a file or a pattern") from None
    except PermissionError as e:
        raise VfmauditError(f"{spec}: access denied ({first_line(e)}); check the credentials and their "
                            f"rights on the bucket") from None
    except Exception as e:  # noqa: BLE001 - the stores' own exception types (botocore, aiohttp, google)
        raise _classified(e, spec) from None


def _classified(e: BaseException, spec: str) -> BaseException:
    name = type(e).__name__
    text = first_line(e)
    if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError", "DefaultCredentialsError"):
        return VfmauditError(f"{spec}: no credentials found ({text}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                             f"(or a profile, or --storage-option anon=true for a public bucket)")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError", "ConnectionError",
                "ConnectionRefusedError", "ServerTimeoutError", "TimeoutError", "ReadTimeoutError") \
            or isinstance(e, (ConnectionError, TimeoutError)):
        return VfmauditError(f"{spec}: the store cannot be reached ({text}); check the endpoint (AWS_ENDPOINT_URL or "
                             f"--storage-option endpoint_url=...) and the network")
    if isinstance(e, OSError):
        return VfmauditError(f"{spec}: cannot be read ({text})")
    return e


# -- patterns -----------------------------------------------------------------------------------
_BRACE = re.compile(r"\{([^{}]*)\}")


def expand_braces(pattern: str) -> list[str]:
    """webdataset's brace notation: shard-{000..009}.tar (zero padding kept), {a,b}; several braces
    make their product, in order."""
    parts, alternatives = [], []
    last = 0
    for m in _BRACE.finditer(pattern):
        parts.append(pattern[last:m.start()])
        alternatives.append(_alternatives(m.group(1), pattern))
        last = m.end()
    if not alternatives:
        return [pattern]
    tail = pattern[last:]
    return ["".join(p + c for p, c in zip(parts, combo)) + tail for combo in itertools.product(*alternatives)]


def _alternatives(body: str, pattern: str) -> list[str]:
    m = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", body)
    if m:
        lo, hi = m.group(1), m.group(2)
        width = len(lo) if lo.startswith("0") and len(lo) > 1 else 0
        a, b = int(lo), int(hi)
        if b < a:
            raise VfmauditError(f"brace range {{{body}}} in {pattern} runs backwards; write {{{hi}..{lo}}}")
        return [str(i).zfill(width) for i in range(a, b + 1)]
    if "," in body:
        return body.split(",")
    raise VfmauditError(f"brace {{{body}}} in {pattern} is neither a range {{000..099}} nor a list {{a,b}}")


def has_pattern(spec: str) -> bool:
    return bool(_BRACE.search(spec)) or any(c in spec for c in "*?[")


def os_environ_endpoint() -> str | None:
    """The S3 endpoint the environment names (botocore reads the same variables)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def missing_message(spec: str, fs, path: str) -> str:
    """Why a remote file is not there: its bucket is missing, or the file."""
    bucket = path.split("/", 1)[0]
    if is_url(spec) and "/" in path:
        try:
            if not fs.exists(bucket):
                return f"the bucket {bucket} of {spec} does not exist; check its name and the endpoint"
        except Exception:  # noqa: BLE001 - the first message is the useful one
            pass
    return f"no such file: {spec}; check the path"
