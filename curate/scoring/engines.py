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
    """Ray tasks over shards and global-phase tasks: a cluster at `address`, else a new local Ray instance.

    Every task is named after what it does (`TASK.label`, e.g. "text_dedup buckets 003-000-001"), so Ray's state
    API (`ray list tasks`, the dashboard) shows which node ran which shard or phase. Tasks are spread over the
    nodes, one CPU each; a phase of a single task takes a whole node (as the local engine runs it in its own
    process with every thread). A task whose worker or node dies (not one that raises) is run again elsewhere
    by Ray, up to `SYSTEM_RETRIES` times: tasks write atomically and skip finished work, so a re-run writes the
    same bytes.
    """

    SYSTEM_RETRIES = 3  # Ray's own default for tasks; application errors are never retried

    def __init__(self, workers: int = 2, address: str | None = None):
        import ray

        self.started_here = not ray.is_initialized()
        if self.started_here:
            # "local": a fresh instance even when `ray start` left a cluster recorded on this machine.
            _connect(address or "local", None if address else max(1, workers))

    def map(self, fn: Callable, tasks: Sequence, max_workers: int | None = None) -> Iterator:
        import ray

        # A phase of one task (k-means, a build) gets the CPUs of the largest node, in a fresh worker process: Ray sets
        # a worker's OMP_NUM_THREADS (FAISS's threads) from the CPUs of its first task. Others: one CPU a task.
        cpus = {"num_cpus": _largest_node_cpus(), "max_calls": 1} if len(tasks) == 1 else {"num_cpus": 1}
        remote = ray.remote(max_retries=self.SYSTEM_RETRIES, retry_exceptions=False, scheduling_strategy="SPREAD", **cpus)(fn)
        window = max_workers or len(tasks)
        waiting, running, labels = list(tasks), [], {}
        while waiting or running:
            while waiting and len(running) < window:
                task = waiting.pop(0)
                running.append(remote.options(name=task.label).remote(task))
                labels[running[-1]] = task.label
            done, running = ray.wait(running, num_returns=1)
            yield _result(done[0], labels.pop(done[0]))

    def close(self) -> None:
        import ray

        if self.started_here:
            ray.shutdown()


def _largest_node_cpus() -> int:
    import ray

    return max([int(node["Resources"].get("CPU", 1)) for node in ray.nodes() if node["Alive"]] or [1])


def _connect(address: str, num_cpus: int | None) -> None:
    """`ray.init`; a cluster that cannot be reached, or refuses this driver, is one line instead of a traceback."""
    import ray
    from tierclip.curate.errors import UserError

    try:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:  # Ray logs the cause above it (e.g. "InvalidAuthToken")
        raise UserError(f"--ray-address {address}: cannot connect to the Ray cluster ({_first_line(exc)}); check that it runs "
                        "and that this machine has its token: RAY_AUTH_MODE=token with RAY_AUTH_TOKEN, or the token file "
                        "in RAY_AUTH_TOKEN_PATH (default ~/.ray/auth_token)") from None


def _result(ref, label: str):
    """A task's return value; the stage's own error as itself (a UserError stays one line), a lost node as one line."""
    import ray
    from ray.exceptions import RayError, RayTaskError
    from tierclip.curate.errors import UserError

    try:
        return ray.get(ref)
    except RayTaskError as exc:
        raise exc.cause from None
    except RayError as exc:  # workers or nodes lost more often than Ray retries: finished tasks stay done
        raise UserError(f"ray: task '{label}' failed ({type(exc).__name__}: {_first_line(exc)}); "
                        "finished shards and tasks are kept: run the same command again to continue") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


ENGINES = {"local": LocalEngine, "ray": RayEngine}
