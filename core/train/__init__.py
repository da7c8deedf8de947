"""Training: config, the loop, resumable checkpoints, curves, and multi-GPU set-up.

``train(load_train_config("colormamba-lite", ["optim.epochs=10"]))`` trains and returns the
run folder; ``train(config, resume=run_dir / "checkpoint.pt")`` continues a run exactly.
"""

from nirstream.core.train.config import TrainConfig, load_train_config
from nirstream.core.train.trainer import Trainer, lr_schedule, train

__all__ = ["TrainConfig", "Trainer", "load_train_config", "lr_schedule", "train"]
