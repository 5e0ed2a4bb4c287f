"""Engines run one function over many shard tasks: `local` (a process pool) or `ray` (Ray tasks).

Both yield each task's result as it finishes; the runner owns progress bars
and writes. Stage code is the same under either engine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence


class LocalEngine:
    """A spawn-context process pool shared by every stage of one run (so worker model caches last).

    A stage limited to one worker, or a single task, runs inline in this process without a pool.
    """

    def __init__(self, workers: int = 2, address: str | None = None):
        self.workers = max(1, workers)
        self.executor = None

    def map(self, fn: Callable, tasks: Sequence, max_workers: int | None = None) -> Iterator:
        if min(self.workers, max_workers or self.workers, len(tasks)) <= 1:
            yield from (fn(task) for task in tasks)
            return
        from concurrent.futures import as_completed

        from tierclip.curate.procs import sigint_ignored_by_children

        with sigint_ignored_by_children():  # workers spawned now ignore SIGINT: Ctrl-C stops this process alone
            futures = [self._executor().submit(fn, task) for task in tasks]
        try:
            yield from (future.result() for future in as_completed(futures))
        except BaseException:  # Ctrl-C, a failed shard, an abandoned run: the tasks still running are not waited for
            self.stop_workers()
            raise
        finally:
            for future in futures:
                future.cancel()

    def _executor(self):
        if self.executor is None:
            import multiprocessing
            import os
            from concurrent.futures import ProcessPoolExecutor

            from tierclip.curate.procs import die_with_parent

            self.executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=die_with_parent, initargs=(os.getpid(),))
        return self.executor

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)

    def stop_workers(self) -> None:
        """End the worker processes now (the outputs they were writing are atomic: nothing half-made is kept).
        Written by hand: `ProcessPoolExecutor.terminate_workers()` arrives in Python 3.14; before it the
        processes are reachable only as the executor's `_processes`."""
        if self.executor is None:
            return
        for process in list((self.executor._processes or {}).values()):
            process.terminate()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.executor = None


class RayEngine:
    """Ray tasks over shards: a cluster at `address`, else a local Ray instance with `workers` CPUs."""

    def __init__(self, workers: int = 2, address: str | None = None):
        import ray

        self.started_here = not ray.is_initialized()
        if self.started_here:
            ray.init(address=address, num_cpus=None if address else max(1, workers), include_dashboard=False,
                     log_to_driver=False, configure_logging=False)

    def map(self, fn: Callable, tasks: Sequence, max_workers: int | None = None) -> Iterator:
        import ray
        from ray.exceptions import RayTaskError

        remote = ray.remote(num_cpus=1, max_retries=0)(fn)
        window = max_workers or len(tasks)
        waiting, running = list(tasks), []
        while waiting or running:
            while waiting and len(running) < window:
                running.append(remote.remote(waiting.pop(0)))
            done, running = ray.wait(running, num_returns=1)
            try:
                yield ray.get(done[0])
            except RayTaskError as exc:  # re-raise the stage's own error (a UserError stays one line)
                raise exc.cause from None

    def close(self) -> None:
        import ray

        if self.started_here:
            ray.shutdown()


ENGINES = {"local": LocalEngine, "ray": RayEngine}
