"""Run a generator in a background thread, a bounded number of items ahead of its consumer.

The audit's producer (decode, prepare, perturb) and fine-tuning's batches use it, so the encoder
or the optimiser never waits on image work (Numba kernels and OpenCV release the GIL). An
exception in the worker is re-raised in the consumer; stopping early stops the worker.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetched(make: Callable[[], Iterable[T]], ahead: int = 2, name: str = "vfmaudit-prefetch") -> Iterator[T]:
    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(obj: object) -> bool:
        while not stop.is_set():
            try:
                q.put(obj, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def worker() -> None:
        try:
            for obj in make():
                if not put(obj):
                    return
            put(_DONE)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises
            put(e)

    thread = threading.Thread(target=worker, name=name, daemon=True)
    thread.start()
    try:
        while True:
            obj = q.get()
            if obj is _DONE:
                return
            if isinstance(obj, BaseException):
                raise obj
            yield obj
    finally:
        stop.set()
        thread.join(timeout=5)
