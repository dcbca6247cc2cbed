"""Ray, in one place: importing it with a one-line error, starting or joining a cluster, and an
actor pool (Ray Data) that maps work items over workers which build their state once.

A dead worker is restarted by Ray and its item redone (`max_restarts`, `max_task_retries`); the
items' own outputs (shard files, cache files) are written atomically by the workers, which is
what makes a retried or resumed item safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import warnings
from typing import Callable, Iterator

from vfmaudit.errors import VfmauditError

RESTARTS = 3


def import_ray():
    """The ray module (with Ray Data), or one line saying how to install it."""
    try:
        import ray  # noqa: PLC0415
        import ray.data  # noqa: F401, PLC0415
    except ImportError:
        raise VfmauditError("the ray engine needs Ray: pip install 'vfmaudit[ray]' (or engine local)",
                            param="engine") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[object]:
    """Join the running Ray instance, or start one (a local instance, or `address`: "auto",
    ray://host:10001) and shut it down at the end; vfmaudit's console keeps to its own lines."""
    ray = import_ray()  # its Python loggers report what is no error (progress bars off): errors only
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    started = not ray.is_initialized()
    if started:
        check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     logging_level="ERROR")
        except ConnectionError as e:  # "auto" with no cluster running, a refused handshake
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            hint = ("; if the cluster uses token authentication, set RAY_AUTH_MODE=token (and RAY_AUTH_TOKEN, or "
                    "the token in ~/.ray/auth_token)" if os.environ.get("RAY_AUTH_MODE", "") != "token" else "")
            raise VfmauditError(f"cannot join the Ray cluster at {address}: {first}{hint}",
                                param="ray_address") from None
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield ray
    finally:
        if started:
            ray.shutdown()


def check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, where a cluster address does not answer: ray.init itself retries
    for minutes and prints C++ warnings before it gives up."""
    if address in (None, "", "auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise VfmauditError(f"ray_address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}",
                            param="ray_address")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise VfmauditError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}): start it (ray start "
                            f"--head) or pass the address it printed", param="ray_address") from None


def map_actor_pool(items: list[dict], worker: type, worker_kwargs: dict, workers: int, gpus_per_worker: float = 0.0,
                   prepare: Callable[..., dict] | None = None, prepare_kwargs: dict | None = None) -> Iterator[dict]:
    """Run `worker(**worker_kwargs)(batch)` over `items`, one item per call, on `workers` actors.

    prepare: an optional CPU stage (Ray tasks, not counted against the actors' CPUs) that turns an
    item into what the worker receives (e.g. decoded images). Yields each call's output row as it
    finishes. Call inside `ray_session()`.
    """
    ray = import_ray()
    if gpus_per_worker:  # else Ray waits for GPUs that never come: the run would hang without a word
        have = float(ray.cluster_resources().get("GPU", 0))
        if have < gpus_per_worker:
            raise VfmauditError(f"gpus_per_worker {gpus_per_worker:g} asks each actor for a GPU share, but the Ray "
                                f"cluster has {have:g} GPU(s); pass gpus_per_worker 0, or a ray_address of a "
                                f"cluster whose GPU nodes are up", param="gpus_per_worker")
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    if prepare is not None:
        ds = ds.map_batches(prepare, batch_size=1, fn_kwargs=prepare_kwargs or {}, batch_format="numpy",
                            num_cpus=0)  # light: never waits behind the encoders
    with warnings.catch_warnings():  # Ray collects the restart options under a deprecated name
        warnings.simplefilter("ignore")
        ds = ds.map_batches(worker, batch_size=1, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
                            num_gpus=gpus_per_worker or None, fn_constructor_kwargs=worker_kwargs,
                            max_restarts=RESTARTS, max_task_retries=RESTARTS)
    yield from ds.iter_rows()
