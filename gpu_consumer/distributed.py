"""Several consumers, one per rank: torch.distributed data parallelism.

Every rank trains on its own batches; after backward the gradients are
averaged across ranks with one all-reduce of a flat buffer, so every rank
applies the same update and the weights stay identical (rank 0's initial
weights are broadcast first).  Averaging by hand rather than through DDP keeps
parameters that one batch does not touch (a MultiSage context type absent from
it) in step on every rank.  gloo on CPU, NCCL on CUDA; `torchrun` sets the
environment read here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> Rank:
    """The rank torchrun (or a test) put in the environment; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank()
    return Rank(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(rank: Rank, device: torch.device) -> None:
    """Join the process group (env:// rendezvous) when there is more than one rank."""
    if rank.world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)  # NCCL binds each rank to its own GPU
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=rank.rank, world_size=rank.world_size)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_parameters(module: torch.nn.Module) -> None:
    if active():
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, src=0)


def average_gradients(module: torch.nn.Module) -> None:
    """Mean of every parameter's gradient across ranks (missing grads count as zero)."""
    if not active():
        return
    params = [p for p in module.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
        offset += n


def all_agree(flag: bool, device: torch.device | str = "cpu") -> bool:
    """True on every rank iff `flag` is true on every rank (stop together).
    `device` must be the trainer's device under NCCL (it reduces CUDA tensors only)."""
    if not active():
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item() > 0)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
