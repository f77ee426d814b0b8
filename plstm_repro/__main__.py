"""``python -m plstm_repro`` = ``plstm``; under torchrun it trains with DistributedDataParallel.

    torchrun --nproc-per-node 2 -m plstm_repro train sines --model phased

gloo on the CPU, NCCL on GPUs; only rank 0 logs to MLflow and writes checkpoints.
"""

import os


def main() -> None:
    from .cli import app

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        app()
        return
    import torch.distributed as dist

    from .distributed import init_distributed, resolve_device

    # each process on its own GPU (cuda:LOCAL_RANK) where CUDA is visible, else gloo on the CPU
    init_distributed(resolve_device("auto"))
    try:
        app()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
