"""Several consumers, one per rank: torch.distributed data parallelism.

Every rank trains on its own batches (batch b % N == r of each epoch, see
`EpochPlan`); after backward the gradients are averaged across ranks with one
all-reduce of a flat buffer, so every rank applies the same update and the
weights stay identical (rank 0's initial weights are broadcast first).  A rank
without a batch in the last round of an epoch still joins the all-reduce with
zero gradients and is left out of the mean (the buffer carries a count of the
ranks that had a batch), so that step is the mean over the batches trained.
Averaging by hand rather than through DDP keeps parameters that one batch
does not touch (a MultiSage context type absent from it) in step on every
rank.  gloo on CPU, NCCL on CUDA; `torchrun` sets the environment read here.
"""

from __future__ import annotations

import json
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


def average_gradients(module: torch.nn.Module, contributes: bool = True) -> int:
    """Mean of every parameter's gradient over the ranks that had a batch
    (`contributes`; missing grads count as zero); returns how many had one."""
    params = [p for p in module.parameters() if p.requires_grad]
    if not active():
        return int(contributes)
    grads = [p.grad if p.grad is not None and contributes else torch.zeros_like(p)
             for p in params]
    count = torch.ones(1, device=params[0].device) if contributes else \
        torch.zeros(1, device=params[0].device)
    flat = torch.cat([g.reshape(-1).float() for g in grads] + [count])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    contributors = int(flat[-1].item())
    flat /= max(1, contributors)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).to(p.dtype)
        offset += n
    return contributors


def consensus(stop: bool, checkpoint: bool,
              device: torch.device | str = "cpu") -> tuple[bool, bool]:
    """(any rank stops, any rank wants a checkpoint), the same on every rank:
    ranks stop together and checkpoint at the same step (the checkpoint gathers
    every rank's cursor)."""
    if not active():
        return stop, checkpoint
    value = torch.tensor([float(stop), float(checkpoint)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value[0].item() > 0), bool(value[1].item() > 0)


def all_gather_json(obj, device: torch.device | str = "cpu") -> list:
    """`obj` (plain data) from every rank, in rank order.  Sent as JSON bytes
    in uint8 tensors (NCCL needs `device` = this rank's GPU), not pickled."""
    if not active():
        return [obj]
    data = torch.frombuffer(bytearray(json.dumps(obj).encode()), dtype=torch.uint8).to(device)
    size = torch.tensor([data.numel()], dtype=torch.int64, device=device)
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    lengths = [int(s.item()) for s in sizes]
    padded = torch.zeros(max(lengths), dtype=torch.uint8, device=device)
    padded[:data.numel()] = data
    out = [torch.zeros_like(padded) for _ in lengths]
    dist.all_gather(out, padded)
    return [json.loads(bytes(t[:n].cpu().numpy())) for t, n in zip(out, lengths)]


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
