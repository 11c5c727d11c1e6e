"""Where sweep work runs: one small interface, one registry of back-ends.

An executor runs picklable tasks somewhere and hands back ``concurrent.futures.Future`` objects, so
the sweep driver waits on every back-end the same way. It also says which exceptions mean "the
worker died" (``crash_errors``: the driver reruns the task) as opposed to an error the task raised
(the driver reports it). Executors never touch the results store; the driver is its one writer.

- ``local`` (default): a process pool on this machine, one worker per core unless told otherwise.
- ``ray``: one Ray task per piece of work, on a local Ray instance or, with ``address``, an existing
  cluster (``pip install 'collapsebench[ray]'``); tasks ask for the CPUs/GPUs their cell needs.
- ``inline``: in the calling process, one task at a time (debuggers, notebooks, tests).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar
from weakref import WeakKeyDictionary

from collapsebench.registry import Registry

TaskT = TypeVar("TaskT")
ResultT = TypeVar("ResultT")


def main_file() -> str | None:
    """The main program's ``__file__``: what ``spawn`` workers re-run. None in a notebook or for
    ``python -c``; a name that is no file for a program read from standard input (``<stdin>``)."""
    return getattr(sys.modules.get("__main__"), "__file__", None)


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Resources:
    """What one task needs. ``gpus=None``: one GPU if the task's model wants an accelerator and the
    back-end has one, else none."""

    cpus: float = 1.0
    gpus: float | None = None
    wants_accelerator: bool = False


class Executor(ABC):
    """Runs tasks; see the module docstring."""

    registered_name: ClassVar[str]
    crash_errors: tuple[type[BaseException], ...] = ()
    # Where tasks run decides which registered names they see: this process sees them all; fresh
    # worker processes see collapsebench's, plugins' and what the modules a task names register, and
    # also the main script's where they re-run it (``spawn`` does; Ray's workers do not).
    runs_in_this_process: ClassVar[bool] = False
    reruns_main_script: ClassVar[bool] = False

    @abstractmethod
    def submit(
        self, function: Callable[[TaskT], ResultT], task: TaskT, resources: Resources
    ) -> Future[ResultT]: ...

    def recover(self, failed: Future[Any]) -> None:
        """Called after ``failed`` raised one of ``crash_errors``, before work is resubmitted."""
        return None

    def close(self) -> None:
        """Release workers; tasks still running are abandoned (their work is redone by a rerun)."""
        return None

    def abort(self) -> None:
        """Release workers at once: the driver is leaving early (Ctrl-C, an error) and will not commit
        what tasks still running would return. By default the same as ``close``."""
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


EXECUTORS: Registry[Executor] = Registry("executor")


def make_executor(name: str, workers: int | None = None, address: str | None = None) -> Executor:
    if address is not None and name != "ray":
        raise ValueError(f"--address joins a Ray cluster; the {name!r} back-end takes no address")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    kwargs: dict[str, Any] = {"workers": workers}
    if address is not None:
        kwargs["address"] = address
    return EXECUTORS.make(name, **kwargs)


@EXECUTORS.register("inline")
class InlineExecutor(Executor):
    """Runs each task at once, in this process."""

    runs_in_this_process = True

    def __init__(self, workers: int | None = None) -> None:
        del workers  # one task at a time by definition

    def submit(
        self, function: Callable[[TaskT], ResultT], task: TaskT, resources: Resources
    ) -> Future[ResultT]:
        future: Future[ResultT] = Future()
        try:
            future.set_result(function(task))
        except Exception as error:
            future.set_exception(error)
        return future


# The variables that size numpy's and torch's thread pools (OpenMP, MKL, OpenBLAS).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _start_worker(threads: int) -> None:
    # Set before the worker imports numpy/torch, whose thread pools read these once: N workers with
    # N threads each on N cores thrash.
    for variable in THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    # Ctrl-C reaches the terminal's whole process group. Only the driver acts on it (it stops the
    # workers itself, see ``abort``): with the workers interrupted too, the pool's shutdown was seen
    # waiting forever on workers stuck in its task queue.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """A pool of ``workers`` processes (default: one per available core), started with ``spawn`` so
    a worker never inherits a forked copy of torch or an open database. Every worker gets an equal
    share of the cores for its numerical libraries. GPU cells share this machine's GPU: with large
    image models, use ``workers=1`` (or the ray back-end, which counts GPUs)."""

    crash_errors = (BrokenProcessPool,)
    reruns_main_script = True

    def __init__(self, workers: int | None = None) -> None:
        program = main_file()
        if program is not None and not os.path.isfile(program):
            # spawn re-runs the main program from its file; one read from stdin has none, and every
            # worker would die at start-up with only "worker died" to show for it.
            raise ValueError(
                f"the local back-end's worker processes re-run the main program, and {program!r} is "
                "not a file (a program read from standard input?): save it to a file and run that, or "
                "use backend='inline'"
            )
        cores = available_cores()
        self.workers = workers or cores
        self._threads = max(1, cores // self.workers)
        self._epoch = 0
        self._epoch_of: WeakKeyDictionary[Future[Any], int] = WeakKeyDictionary()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(self._threads,),
        )

    def submit(
        self, function: Callable[[TaskT], ResultT], task: TaskT, resources: Resources
    ) -> Future[ResultT]:
        try:
            future = self._pool.submit(function, task)
        except BrokenProcessPool:  # a worker died after the driver last looked: start afresh
            self._restart()
            future = self._pool.submit(function, task)
        self._epoch_of[future] = self._epoch
        return future

    def _restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._epoch += 1
        self._pool = self._start()

    def recover(self, failed: Future[Any]) -> None:
        # A dead worker breaks the whole pool: every task in flight fails with it. Restart the pool
        # once per breakage, not once per failed task.
        if self._epoch_of.pop(failed, None) == self._epoch:
            self._restart()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        # Stop the workers now rather than after their chunks: they write nothing, so only those
        # chunks are lost, as when a worker dies. (ProcessPoolExecutor has no public way before 3.14.)
        terminate = getattr(self._pool, "terminate_workers", None)
        if terminate is not None:
            terminate()
        else:
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self.close()


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Each task a Ray task. Without ``address`` a local Ray instance is started with ``workers`` CPUs
    (default: all); with one (``"auto"``, ``"ray://host:10001"``, ...) the cluster's. Ray's own task
    retries are off: the sweep driver reruns a crashed task from the store's last checkpoint. Usage
    statistics stay off unless ``RAY_USAGE_STATS_ENABLED`` says otherwise."""

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
            from ray import exceptions
        except ImportError:
            raise ImportError(
                "the ray back-end needs Ray: pip install -c constraints.txt 'collapsebench[ray]'"
            ) from None
        self._ray = ray
        self.crash_errors = (
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.ObjectLostError,
        )
        self._started_here = not ray.is_initialized()
        if self._started_here:
            options: dict[str, Any] = {"logging_level": "WARNING"}
            if address is None:
                # "local": a new instance even where `ray start` left a cluster on this machine (Ray
                # would join that one, or fail on a stale address); settings only for what we start.
                address = "local"
                options.update(include_dashboard=False, num_cpus=workers or os.cpu_count())
            ray.init(address=address, **options)
        self._gpus_available = ray.cluster_resources().get("GPU", 0) > 0
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(
        self, function: Callable[[TaskT], ResultT], task: TaskT, resources: Resources
    ) -> Future[ResultT]:
        remote = self._remote.get(function)
        if remote is None:
            remote = self._remote[function] = self._ray.remote(max_retries=0)(function)
        gpus = resources.gpus
        if gpus is None:
            gpus = 1.0 if resources.wants_accelerator and self._gpus_available else 0.0
        return remote.options(num_cpus=resources.cpus, num_gpus=gpus).remote(task).future()

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()
