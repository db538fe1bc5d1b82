"""The torchrun glue of the training loop (private): one process per GPU, each with
1/N of every global batch; DistributedDataParallel averages the gradients."""
import os

import torch
import torch.distributed as dist


def setup(device):
    """(rank, world, device, started) under torchrun, else (0, 1, device, False)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device, False
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device, started


def wrap(model, device, world):
    """``model`` in DistributedDataParallel when ``world > 1``, else itself."""
    if world == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
