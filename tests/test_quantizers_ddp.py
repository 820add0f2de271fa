"""k-means, dead-code restart, EMA and the entropy penalties (VQ, FSQ) under DDP (2 gloo).

Each process quantizes its half of every batch; the final codebook must equal the one a single
process gets from the whole batches (the halves in rank order), and the entropy penalty's
gradients must be the single-process ones (times the world size, which DDP's averaging of
parameter gradients divides out again).
"""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from taming.quantize import FSQ, ImprovedVectorQuantizer
from taming.quantize.entropy import entropy_penalty

STEPS = 6
CONFIGS = {
    "ema_kmeans_restart_l2": dict(
        l2_norm=True, kmeans_init=True, restart_unused_after=2, ema=True, ema_decay=0.8
    ),
    "kmeans_restart": dict(kmeans_init=True, restart_unused_after=1),
    "ema_restart": dict(restart_unused_after=2, ema=True, ema_decay=0.9),
}


def _batches() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    # few distinct modes so that codes die and restarts happen
    return [
        torch.randn(4, 6, 4, 4, generator=g) * 0.2 + torch.randn(4, 6, 1, 1, generator=g) * 2
        for _ in range(STEPS)
    ]


def _run(config: dict, batches: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    q = ImprovedVectorQuantizer(24, 6, **config).train()
    for z in batches:
        q(z)
    return {k: v.clone() for k, v in q.state_dict().items()}


def _logits() -> torch.Tensor:
    return torch.randn(40, 9, generator=torch.Generator().manual_seed(3)) * 2


FSQ_ENTROPY = FSQ([5, 4, 3, 3], entropy_weight=1.0, diversity_gamma=0.7)


def _bounded() -> torch.Tensor:
    z = torch.randn(40, 4, generator=torch.Generator().manual_seed(4)) * 2
    return FSQ_ENTROPY.bound(z)


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        results = {}
        for name, config in CONFIGS.items():
            half = [z.chunk(world, dim=0)[rank] for z in _batches()]
            results[name] = _run(config, half)
        logits = _logits().chunk(world)[rank].clone().requires_grad_(True)
        entropy_penalty(logits, 0.5).backward()
        results["entropy_grad"] = logits.grad
        bounded = _bounded().chunk(world)[rank].clone().requires_grad_(True)
        FSQ_ENTROPY.entropy_loss(bounded).backward()
        results["fsq_entropy_grad"] = bounded.grad
        torch.save(results, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ddp") / "result")
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    return [torch.load(f"{out}.{r}") for r in range(2)]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_two_processes_end_with_the_single_process_codebook(ddp_results, name):
    single = _run(CONFIGS[name], _batches())
    r0, r1 = ddp_results[0][name], ddp_results[1][name]
    assert set(r0) == set(single)
    for key, value in single.items():
        assert torch.equal(r0[key], r1[key]), key  # the processes agree bit for bit
        torch.testing.assert_close(r0[key], value, rtol=1e-5, atol=1e-6, msg=key)
    if "restart" in name:  # the scenario exercises restarts
        assert int(single["restart.restarts"]) > 0


def test_entropy_penalty_gradients_match_the_single_process(ddp_results):
    logits = _logits().requires_grad_(True)
    entropy_penalty(logits, 0.5).backward()
    grads = torch.cat([ddp_results[r]["entropy_grad"] for r in range(2)]) / 2
    torch.testing.assert_close(grads, logits.grad, rtol=1e-5, atol=1e-7)


def test_fsq_entropy_gradients_match_the_single_process(ddp_results):
    """FSQ's joint batch entropy (an outer product of the channel halves) is all-reduced too."""
    bounded = _bounded().requires_grad_(True)
    FSQ_ENTROPY.entropy_loss(bounded).backward()
    grads = torch.cat([ddp_results[r]["fsq_entropy_grad"] for r in range(2)]) / 2
    torch.testing.assert_close(grads, bounded.grad, rtol=1e-5, atol=1e-7)
