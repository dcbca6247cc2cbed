"""Ray, in one place: importing it with a one-line error, starting or joining a cluster, and an
actor pool (Ray Data) that maps work items over workers which build their state once.

A dead worker is restarted by Ray and its item redone (`max_restarts`, `max_task_retries`); the
items' own outputs (shard files, cache files) are written atomically by the workers, which is
what makes a retried or resumed item safe.
"""

from __future__ import annotations

import contextlib
import logging
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
    ray = import_ray()
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 logging_level="ERROR")
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield ray
    finally:
        if started:
            ray.shutdown()


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
        ds = ds.map_batches(worker, batch_size=1, batch_format="numpy", concurrency=workers, num_cpus=1,
                            num_gpus=gpus_per_worker or None, fn_constructor_kwargs=worker_kwargs,
                            max_restarts=RESTARTS, max_task_retries=RESTARTS)
    yield from ds.iter_rows()
