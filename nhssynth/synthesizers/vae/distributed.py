"""Data-parallel DP-SGD for the DP-VAE: one training run across several processes.

:func:`train_vae_distributed` spawns ``n_processes`` workers (``torch.multiprocessing``,
"spawn") joined in a ``torch.distributed`` process group -- gloo on CPU, NCCL on GPUs (rank
``r`` on ``cuda:r``) -- rendezvous through a file in a private temporary directory (no port to
pick or to collide on).  Every worker runs :func:`~nhssynth.synthesizers.vae.training.train_vae`
with a :class:`ProcessGroupComm` and the same initial weights and generator states:

* every rank draws the same Poisson batch over the **whole** table (so the sampling is the
  one the accountant assumes, exactly as in one process) and the same reparameterisation
  noise for it, and keeps its shard of the batch (positions ``rank, rank + world, ...``);
* each rank clips the per-sample gradients of its shard (ghost clipping) and sums them; the
  shards' sums are summed across processes with one all-reduce per step;
* the Gaussian noise is added **once**, by rank 0
  (:func:`~nhssynth.privacy.dpsgd.add_noise_sharded`);
* every rank takes the same Adam step on the same noisy gradient, so the replicas stay
  identical, and rank 0 sends the weights and the history back.

The noise multiplier, sample rate and number of steps are those of the single-process run, so
the accountant -- and ``epsilon_`` -- are identical; with the same seed the weights equal the
single-process fit's up to the order of floating-point sums (``tests/test_distributed.py``).

The parent watches the workers: if one raises or dies (an out-of-memory kill, a segfault) the
others are stopped and :class:`DistributedTrainingError` names the rank; no model is returned.
"""
from __future__ import annotations

import io
import logging
import os
import queue as queue_module
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ...base import OutputSpan
from ...exceptions import NhssynthError
from .losses import SpanLayout
from .networks import VAENetwork
from .training import DPSettings, train_vae

logger = logging.getLogger("nhssynth")

__all__ = ["DistributedTrainingError", "ProcessGroupComm", "check_shards", "train_vae_distributed"]

# Test hook: "<rank>:<all-reduce call>:<exit|raise>" makes that worker die (os._exit(3)) or raise
# at that collective call; read in the worker, so it travels with the environment.
_FAULT_ENV = "NHSSYNTH_DISTRIBUTED_FAULT"
_POLL_S = 0.1  # how often the parent checks that every worker is alive
_STOP_GRACE_S = 5.0  # how long a stopped worker gets before it is killed


class DistributedTrainingError(NhssynthError, RuntimeError):
    """A worker of data-parallel training failed or died; nothing was fitted."""


@dataclass
class ProcessGroupComm:
    """The :class:`~nhssynth.synthesizers.vae.training.Communicator` of a ``torch.distributed``
    process group: ``all_reduce`` sums a tensor over all ranks in place."""

    rank: int
    world_size: int
    _fault: tuple[int, str] | None = None
    _calls: int = 0

    def all_reduce(self, tensor: torch.Tensor) -> None:
        self._calls += 1
        if self._fault is not None and self._calls == self._fault[0]:
            if self._fault[1] == "exit":
                os._exit(3)
            raise RuntimeError(f"injected fault on rank {self.rank} at call {self._calls}")
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)


def check_shards(batch_size: int, n_rows: int, n_processes: int) -> None:
    """Refuse a split in which a process would get less than one row of a batch on average."""
    if n_processes > 1 and (batch_size < n_processes or n_rows < n_processes):
        raise ValueError(
            f"n_processes={n_processes} is too many for batch_size={batch_size} on {n_rows} "
            f"rows: each process works on its share of a batch (batch_size / n_processes = "
            f"{batch_size / n_processes:.3g} rows per step on average).  Use n_processes <= "
            f"{max(1, min(batch_size, n_rows))}, or a larger batch_size.")


def _devices(device: str, n_processes: int) -> tuple[str, list[str]]:
    """The backend and each rank's device."""
    kind = torch.device(device).type
    if kind == "cpu":
        return "gloo", ["cpu"] * n_processes
    if kind == "cuda":
        available = torch.cuda.device_count()
        if available < n_processes:
            raise ValueError(f"n_processes={n_processes} on device={device!r} needs one GPU per "
                             f"process; {available} visible.  Lower n_processes.")
        return "nccl", [f"cuda:{r}" for r in range(n_processes)]
    raise ValueError(f"n_processes > 1 runs on device='cpu' (gloo) or 'cuda' (NCCL, one GPU per "
                     f"process), not {device!r}.")


def _state_bytes(state: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    return buffer.getvalue()


def _worker(rank: int, world: int, store_path: str, payload: dict, results) -> None:
    """One rank: join the group, train on its shards, rank 0 sends the result back."""
    try:
        torch.set_num_threads(payload["threads"])
        device = payload["devices"][rank]
        if device.startswith("cuda"):
            torch.cuda.set_device(device)
        dist.init_process_group(payload["backend"], init_method=f"file://{store_path}",
                                rank=rank, world_size=world,
                                timeout=timedelta(seconds=payload["timeout_s"]))
        fault = None
        spec = os.environ.get(_FAULT_ENV, "")
        if spec and int(spec.split(":")[0]) == rank:
            fault = (int(spec.split(":")[1]), spec.split(":")[2])
        comm = ProcessGroupComm(rank, world, fault)
        network = VAENetwork(**payload["config"])
        network.load_state_dict(torch.load(io.BytesIO(payload["state"])))
        network.to(device)
        layout = SpanLayout(payload["spans"], payload["config"]["n_features"]).to(device)
        generator = torch.Generator(device=device)
        generator.set_state(payload["generator_state"])
        sampler = torch.Generator()
        sampler.set_state(payload["sampler_state"])
        X = payload["X"].to(device)
        on_epoch = (lambda record: results.put(("epoch", rank, record))) if rank == 0 else None
        history = train_vae(network, X, layout, generator=generator, sampling_generator=sampler,
                            on_epoch=on_epoch, comm=comm, **payload["train"])
        if rank == 0:
            results.put(("done", rank, (_state_bytes(network.state_dict()), history)))
        dist.barrier()  # rank 0's result is queued before anyone leaves the group
        dist.destroy_process_group()
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, then the worker exits
        results.put(("error", rank, (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
        raise SystemExit(1) from None


def _stop(processes: list) -> None:
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + _STOP_GRACE_S
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _failure(exitcodes: list, errors: dict[int, tuple[str, str]]) -> DistributedTrainingError:
    """One message naming the ranks that failed: those that died without a word (killed, or
    ``os._exit``) first, then those that raised (often only because they lost a peer)."""
    died = [(r, code) for r, code in enumerate(exitcodes) if code not in (None, 0)
            and r not in errors]
    lines = [f"rank {r} died (exit code {code}{', killed by a signal' if code < 0 else ''})"
             for r, code in died]
    lines += [f"rank {r} raised {summary}" for r, (summary, _) in sorted(errors.items())]
    for r, (_, trace) in sorted(errors.items()):
        logger.debug("traceback of rank %d:\n%s", r, trace)
    return DistributedTrainingError(
        f"data-parallel training failed on {len(exitcodes)} processes: " + "; ".join(lines)
        + ".  The other workers were stopped and no model was fitted.")


def train_vae_distributed(network: VAENetwork, X: torch.Tensor, spans: Sequence[OutputSpan], *,
                          n_processes: int, device: str, generator: torch.Generator,
                          sampling_generator: torch.Generator,
                          on_epoch: Callable[[dict], None] | None = None,
                          timeout_s: float = 1800.0, **train_kwargs: Any) -> list[dict]:
    """:func:`~nhssynth.synthesizers.vae.training.train_vae` across ``n_processes`` processes.

    ``network`` (initialised) is trained in place: its weights are replaced by rank 0's at the
    end.  ``generator`` and ``sampling_generator`` are the single-process run's; each worker
    starts from a copy of their states.  ``train_kwargs`` are ``train_vae``'s (``epochs``,
    ``batch_size``, ``learning_rate``, ``beta``, ``weight_decay``, ``dp``).  ``timeout_s`` bounds
    one collective call (a worker that hangs without dying).  Raises
    :class:`DistributedTrainingError` if any worker fails; ``network`` is then unchanged.
    """
    backend, devices = _devices(device, n_processes)
    dp: DPSettings | None = train_kwargs.get("dp")
    check_shards(int(train_kwargs["batch_size"]) if dp is None else
                 max(1, round(dp.sample_rate * X.shape[0])), X.shape[0], n_processes)
    payload = {
        "backend": backend, "devices": devices, "timeout_s": float(timeout_s),
        "threads": max(1, torch.get_num_threads() // n_processes),
        "config": network.config, "state": _state_bytes(network.state_dict()),
        "spans": list(spans), "X": X.detach().cpu().contiguous().share_memory_(),
        "generator_state": generator.get_state(), "sampler_state": sampling_generator.get_state(),
        "train": train_kwargs,
    }
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    tmp = tempfile.mkdtemp(prefix="nhssynth-dist-")
    processes = [ctx.Process(target=_worker, name=f"nhssynth-dp-rank{r}",
                             args=(r, n_processes, os.path.join(tmp, "store"), payload, results),
                             daemon=True) for r in range(n_processes)]
    errors: dict[int, tuple[str, str]] = {}
    done = None
    try:
        for p in processes:
            p.start()
        while done is None:
            try:
                kind, rank, body = results.get(timeout=_POLL_S)
            except queue_module.Empty:
                if any(p.exitcode not in (None, 0) for p in processes) or \
                        all(p.exitcode is not None for p in processes):
                    break  # a worker died (or all left without a result)
                continue
            if kind == "epoch":
                if on_epoch is not None:
                    on_epoch(body)
            elif kind == "error":
                errors[rank] = body
                break
            else:
                done = body
        if done is None:
            time.sleep(2 * _POLL_S)  # let the other ranks' reports of the failure arrive
            exitcodes = [p.exitcode for p in processes]  # before the survivors are stopped
            _stop(processes)
            while True:
                try:
                    kind, rank, body = results.get_nowait()
                except queue_module.Empty:
                    break
                if kind == "error":
                    errors.setdefault(rank, body)
            raise _failure(exitcodes, errors)
        deadline = time.monotonic() + _STOP_GRACE_S
        for p in processes:  # they only leave the group now; the model is complete
            p.join(max(0.0, deadline - time.monotonic()))
    finally:
        _stop(processes)
        results.close()
        shutil.rmtree(tmp, ignore_errors=True)
    state, history = done
    network.load_state_dict(torch.load(io.BytesIO(state)))
    return history
