"""Ray, in one place: importing it with a one-line error, starting or joining a cluster, and an
actor pool that maps work items over workers which build their state once.

Two ways to spread work. `map_actor_pool` is Ray core (actors and tasks): a short list of large
items on workers that build their state once (downstream's variants, attack shards); it starts in
about 2 s. `stream_dataset` is Ray Data: the audit's shards read where they are, a CPU stage of
tasks (read, decode, perturb) sized apart from an actor pool (encode, on GPUs), with Ray Data's
streaming back-pressure between them; it starts about 8 s later and then costs a quarter per
image of the actor pool here (docs/benchmarks.md).
A dead worker is restarted by Ray and its item redone (`max_restarts`, `max_task_retries`); the
items' own outputs (shard files, cache files) are written atomically by the workers, which is
what makes a retried or resumed item safe.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Callable, Iterator

import numpy as np

from vfmaudit.errors import VfmauditError

RESTARTS = 3
IN_FLIGHT = 2  # items queued on each actor: the next one's CPU stage runs while the actor works


def import_ray():
    """The ray module, or one line saying how to install it."""
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        raise VfmauditError("the ray engine needs Ray: pip install 'vfmaudit[ray]' (or engine local)",
                            param="engine") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None) -> Iterator[object]:
    """Join the running Ray instance, or start one (a local instance, or `address`: "auto",
    ray://host:10001) and shut it down at the end; vfmaudit's console keeps to its own lines."""
    ray = import_ray()  # its Python loggers report what is no error: errors only
    logging.getLogger("ray").setLevel(logging.ERROR)
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


def _check_gpus(ray, gpus_per_worker: float) -> None:
    if gpus_per_worker:  # else Ray waits for GPUs that never come: the run would hang without a word
        have = float(ray.cluster_resources().get("GPU", 0))
        if have < gpus_per_worker:
            raise VfmauditError(f"gpus_per_worker {gpus_per_worker:g} asks each actor for a GPU share, but the Ray "
                                f"cluster has {have:g} GPU(s); pass gpus_per_worker 0, or a ray_address of a "
                                f"cluster whose GPU nodes are up", param="gpus_per_worker")


def _user_error(ray, e: BaseException) -> BaseException:
    """A VfmauditError raised in a task or actor, as itself (its one line), else the error."""
    seen = e
    for _ in range(5):
        cause = getattr(seen, "cause", None) or seen.__cause__
        if isinstance(cause, VfmauditError):
            return cause
        if cause is None:
            break
        seen = cause
    return e


def stream_dataset(items: list[dict], read: Callable, read_kwargs: dict, stage: Callable, stage_kwargs: dict,
                   worker: type, worker_kwargs: dict, workers: int, gpus_per_worker: float = 0.0) -> Iterator[dict]:
    """A Ray Data pipeline over `items` (one row each, e.g. a shard to read): `read(row, **read_kwargs)`
    yields rows (a flat map, CPU tasks), `stage(batch, **stage_kwargs)` transforms each (CPU tasks),
    and `worker(**worker_kwargs)(batch)` runs in an actor pool of `workers` actors with
    `gpus_per_worker` each; the rows it returns are yielded as they finish (any order). Batches are
    of one row ({key: numpy array of one value}). A dead actor is restarted and its row redone
    (Ray Data's default for actors). Call inside `ray_session()`."""
    ray = import_ray()
    import ray.data  # noqa: PLC0415

    _check_gpus(ray, gpus_per_worker)
    if not items:
        return
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # vfmaudit's own progress line counts the images
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    cpus = float(ray.cluster_resources().get("CPU", 1))
    # a CPU actor still needs a core to encode on, but the actors must leave one to the CPU stage
    # (else the pipeline waits on itself); a GPU actor gets one core beside its GPU
    actor_cpus = 1.0 if gpus_per_worker else max(0.25, min(1.0, (cpus - 1) / max(1, workers)))
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.flat_map(read, fn_kwargs=read_kwargs, num_cpus=1)
    ds = ds.map_batches(stage, batch_size=1, fn_kwargs=stage_kwargs, num_cpus=1)
    # With GPUs the stages' resources differ and Ray Data keeps them apart: perturbation in CPU tasks,
    # encoding on the GPU actors. Without, it fuses the CPU stage into the actors (their resources
    # match), which saves shipping every chunk's variants between processes.
    ds = ds.map_batches(worker, batch_size=1, fn_constructor_kwargs=worker_kwargs, concurrency=workers,
                        num_gpus=gpus_per_worker or None, num_cpus=actor_cpus)
    try:
        yield from ds.iter_rows()
    except Exception as e:  # noqa: BLE001 - Ray wraps a worker's error in its own types
        found = _user_error(ray, e)
        if found is not e:
            raise found from None
        raise


def map_actor_pool(items: list[dict], worker: type, worker_kwargs: dict, workers: int, gpus_per_worker: float = 0.0,
                   prepare: Callable[..., dict] | None = None, prepare_kwargs: dict | None = None) -> Iterator[dict]:
    """Run `worker(**worker_kwargs)(batch)` over `items`, one item per call, on `workers` actors.

    Each item reaches the worker as a batch of one: {key: numpy array of its one value}; the worker
    returns such a batch, and each yielded row is {key: that value}, as calls finish (any order).
    prepare: an optional CPU stage (a Ray task, not counted against the actors' CPUs) that turns an
    item's batch into what the worker receives (e.g. decoded images). Call inside `ray_session()`.
    """
    ray = import_ray()
    _check_gpus(ray, gpus_per_worker)
    if not items:
        return
    actor_class = ray.remote(num_cpus=1, num_gpus=gpus_per_worker or 0, max_restarts=RESTARTS,
                             max_task_retries=RESTARTS)(worker)
    stage = ray.remote(num_cpus=0, max_retries=RESTARTS)(prepare) if prepare is not None else None
    actors = [actor_class.remote(**worker_kwargs) for _ in range(max(1, min(workers, len(items))))]
    todo = iter(items)
    running: dict = {}  # the call's ObjectRef -> its actor

    def submit(actor) -> None:
        item = next(todo, None)
        if item is None:
            return
        batch = {k: np.asarray([v]) for k, v in item.items()}
        arg = stage.remote(batch, **(prepare_kwargs or {})) if stage is not None else batch
        running[actor.__call__.remote(arg)] = actor

    try:
        for _ in range(IN_FLIGHT):
            for actor in actors:
                submit(actor)
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor = running.pop(ref)
            try:
                out = ray.get(ref)
            except ray.exceptions.RayTaskError as e:  # a user error in a worker: its own one line, not Ray's
                if isinstance(getattr(e, "cause", None), VfmauditError):
                    raise e.cause from None
                raise
            submit(actor)
            yield from ({k: v[i] for k, v in out.items()} for i in range(len(next(iter(out.values())))))
    finally:
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
