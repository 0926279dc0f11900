"""Grid search over privacy settings on a real Dask cluster (issue #15).

A scheduler and two workers are started as separate processes on localhost (random ports, one
thread each, no dashboard); ``GridSearchCV`` over epsilon runs through them with nothing but
``with joblib.parallel_backend("dask")`` around the user's code, and its ``cv_results_`` must
equal the single-process run for the same seeds.  The processes are torn down in the fixture's
finalizer, also when a test fails.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

from nhssynth import MarginalSynthesizer, NonPrivateOperationWarning
from nhssynth.datasets import load_example
from nhssynth.metrics import get_scorer

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed: pip install 'nhssynth[dask]'")
joblib = pytest.importorskip("joblib")

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90  # seconds for the scheduler and both workers to come up on a loaded machine
N_WORKERS = 2


def _kill(proc: subprocess.Popen) -> None:
    """Stop one process we started and everything it started (its own session), by pid."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def dask_client(tmp_path_factory):
    """A Client connected to ``dask scheduler`` + 2 x ``dask worker --nthreads 1`` processes."""
    tmp = tmp_path_factory.mktemp("dask")
    scheduler_file = tmp / "scheduler.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    procs: list[subprocess.Popen] = []
    logs = []

    def start(name, args):
        log = open(tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed in the finally below
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))

    client = None
    try:
        # --port 0: the OS picks a free port; the scheduler writes its address to the file.
        # --idle-timeout / --death-timeout: processes left behind by a killed test run exit.
        start("scheduler", ["distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                            "--port", "0", "--no-dashboard", "--scheduler-file",
                            str(scheduler_file), "--idle-timeout", "600"])
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if procs[0].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the dask scheduler did not start:\n"
                                   + (tmp / "scheduler.log").read_text(errors="replace"))
            time.sleep(0.2)
        for i in range(N_WORKERS):
            start(f"worker{i}", ["distributed.cli.dask_worker", "--scheduler-file",
                                 str(scheduler_file), "--nthreads", "1", "--no-dashboard",
                                 "--host", "127.0.0.1", "--death-timeout", "60",
                                 "--local-directory", str(tmp / f"worker{i}"),
                                 "--name", f"worker{i}"])
        client = distributed.Client(scheduler_file=str(scheduler_file),
                                    timeout=START_TIMEOUT)
        client.wait_for_workers(N_WORKERS, timeout=START_TIMEOUT)
        yield client
    except Exception as exc:
        tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                          for p in sorted(tmp.glob("*.log")))
        raise RuntimeError(f"Dask cluster failed: {exc}\n{tails}") from exc
    finally:
        if client is not None:
            client.close()
        for proc in reversed(procs):  # workers first, then the scheduler
            _kill(proc)
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def data():
    df, md = load_example(return_metadata=True)
    cols = ["age", "sex", "dzclass", "income", "charges", "hospdead", "num.co", "edu"]
    return df[cols].head(2000), md.select(cols)


def _search(md, df):
    """The user's code: the same in both runs."""
    scoring = {"fidelity": get_scorer("fidelity"), "privacy": get_scorer("dcr_share", data=df)}
    search = GridSearchCV(MarginalSynthesizer(metadata=md, random_state=0),
                          {"epsilon": [0.5, 1, 3, 10]}, scoring=scoring, refit="fidelity", cv=3,
                          error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonPrivateOperationWarning)
        return search.fit(df)


def _scores(search):
    return {k: np.asarray(v) for k, v in search.cv_results_.items()
            if k.startswith(("split", "mean_test", "std_test", "rank_test"))}


def test_grid_search_over_epsilon_on_dask_equals_single_process(dask_client, data):
    df, md = data
    local = _search(md, df)
    with distributed.get_task_stream(dask_client) as stream, joblib.parallel_backend("dask"):
        remote = _search(md, df)
    ran_on = {t["worker"] for t in stream.data}
    assert ran_on, "no task ran on the Dask workers"
    assert ran_on <= set(dask_client.scheduler_info()["workers"])

    expected, got = _scores(local), _scores(remote)
    assert expected.keys() == got.keys()
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
    assert remote.best_params_ == local.best_params_
    # the refitted best estimator samples the same rows
    a = local.best_estimator_.sample(200, random_state=1)
    b = remote.best_estimator_.sample(200, random_state=1)
    assert a.equals(b)


# Not tested: a worker dying mid-fit.  Tried with a fit that calls os._exit(1) on the worker
# (distributed 2026.8.0, joblib 1.6.0, nannies on, allowed-failures 0): the scheduler marks the
# task failed ("1 workers died while trying to run it") but joblib's dask backend then either
# raises FutureCancelledError("... already forgotten") or waits forever, because the data it
# scattered to the dead worker is lost.  Neither is a clear error and the hang cannot be bounded
# from nhssynth's side; docs/scale.md says so and what to do.
