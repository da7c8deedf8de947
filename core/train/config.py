"""The training configuration: one dataclass per YAML section, bound strictly.

``load_train_config`` reads a YAML file (or a bundled name such as ``colormamba-lite``),
applies ``--set key=value`` overrides and binds the result, so a misspelt key fails at once
with the allowed keys instead of being ignored for a whole training run.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nirstream.core.config import apply_overrides, bind, bundled_config, load_yaml
from nirstream.core.data.augment import Augment
from nirstream.core.errors import ConfigError

SCHEDULES = ("cosine", "step", "constant")
LAYOUTS = ("folder", "csv")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainSet:
    """A further folder of training pairs beside the main one, with its own crops and share.

    ``root`` holds ``<split>/nir`` and ``<split>/rgb`` (``split: null``: ``nir`` and ``rgb`` directly).
    ``repeat`` is how many crops of each pair an epoch draws: a megapixel photograph holds many
    different 200 px crops where a 256 px pair holds one. ``augment`` replaces ``data.augment``
    for this set (for example a zoom range, so that a crop can hold a whole car or building).
    """

    name: str
    root: str
    split: str | None = None
    exclude: list[str] = field(default_factory=list)
    repeat: int = 1
    augment: Augment | None = None

    def __post_init__(self) -> None:
        _check_set_name(self.name)
        if self.repeat < 1:
            raise ConfigError(f"data.more_train {self.name}: repeat must be >= 1, got {self.repeat}")


@dataclass
class ValSet:
    """A further validation set, scored every epoch beside the main one as ``val_<name>_<metric>``.

    ``only`` names the pairs to use (a held-out part of a folder whose other pairs train).
    ``weight`` is its share in ``val_score``, the figure the best epoch is chosen on.
    """

    name: str
    root: str
    split: str | None = None
    only: list[str] | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        _check_set_name(self.name)
        if self.weight < 0:
            raise ConfigError(f"data.more_val {self.name}: weight must be >= 0, got {self.weight}")


def _check_set_name(name: str) -> None:
    if not name.isidentifier() or name.lower() != name:
        raise ConfigError(f"a data set name must be a lower-case identifier (it names metrics), got {name!r}")


@dataclass
class DataConfig:
    """Where the pairs are and how training batches are cut from them.

    ``root`` is taken relative to the current folder: the default suits a run from the
    repository root with the shared data beside the checkout; ``--set data.root=...`` points
    elsewhere. ``layout: csv`` reads the pair list from ``csv`` (a path, relative to ``root``)
    instead of the ``<root>/<split>/{nir,rgb}`` folders. ``exclude`` names pairs to leave out
    of training (e.g. badly registered ones). Validation always uses whole images.

    ``repeat`` crops of each main pair per epoch; ``more_train`` adds further training
    folders and ``more_val`` further validation sets. The best epoch is the one with the highest
    ``val_score``: the PSNR of the main validation set (weight ``val_weight``) and of each
    ``more_val`` set, weighted. ``cache`` keeps decoded pairs in memory for the whole run.

    ``test`` names sets that neither training nor selection ever reads: the fixed test split,
    scored once per released file (``benchmarks/quality.py``, ``nirstream eval --config
    --test``). Their ``weight`` is unused.
    """

    root: str = "../shared/data/vcip2020_nir"
    layout: str = "folder"
    csv: str = "pairs.csv"
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 8
    workers: int = 4
    exclude: list[str] = field(default_factory=list)
    augment: Augment = field(default_factory=Augment)
    repeat: int = 1
    val_weight: float = 1.0
    more_train: list[TrainSet] = field(default_factory=list)
    more_val: list[ValSet] = field(default_factory=list)
    test: list[ValSet] = field(default_factory=list)
    cache: bool = True

    def __post_init__(self) -> None:
        for key, sets in (("more_train", self.more_train), ("more_val", self.more_val), ("test", self.test)):
            names = [entry.name for entry in sets]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise ConfigError(f"data.{key}: set names must be unique, {', '.join(repeated)} repeats")
        if self.repeat < 1 or self.val_weight < 0:
            raise ConfigError("data.repeat must be >= 1 and data.val_weight >= 0")
        for test in self.test:
            self._check_unseen(test)
        if self.layout not in LAYOUTS:
            raise ConfigError(f"data.layout must be one of {', '.join(LAYOUTS)}, got '{self.layout}'")
        if self.batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {self.batch_size}")
        if self.workers < 0:
            raise ConfigError(f"data.workers must be >= 0, got {self.workers}")


    def _check_unseen(self, test: "ValSet") -> None:
        """A test set must be neither trained nor selected on: no training set of the same folder
        may keep its pairs, and no validation set may hold them."""
        if test.only is None:
            raise ConfigError(f"data.test {test.name}: name its pairs with 'only' (a test split is fixed by name)")
        held = set(test.only)
        where = (Path(test.root).resolve(), test.split)
        trained = [(f"data.more_train {t.name}", t.root, t.split, t.exclude) for t in self.more_train]
        if self.layout == "folder":
            trained.append(("data", self.root, self.train_split, self.exclude))
        for key, root, split, exclude in trained:
            leaked = sorted(held - set(exclude))
            if (Path(root).resolve(), split) == where and leaked:
                raise ConfigError(f"{key} trains on test pairs of data.test {test.name} ({', '.join(leaked[:3])}): add them to its exclude")
        selected = [(f"data.more_val {v.name}", v.root, v.split, v.only) for v in self.more_val]
        if self.layout == "folder":
            selected.append(("data.val_split", self.root, self.val_split, None))
        for key, root, split, only in selected:
            if (Path(root).resolve(), split) == where and (only is None or held & set(only)):
                raise ConfigError(f"{key} validates on test pairs of data.test {test.name}")


@dataclass
class OptimConfig:
    """Adam and its learning-rate schedule, stepped once per optimiser step.

    ``warmup_epochs`` ramps the rate linearly from zero; then ``cosine`` decays to
    ``lr * min_lr_ratio`` by the last step, ``step`` multiplies by ``gamma`` every
    ``step_epochs`` epochs, ``constant`` keeps it. ``grad_clip`` bounds the global gradient
    norm (``null``: no clipping). ``ema_decay`` keeps an exponential moving average of the
    weights, updated every step: that average is what is validated, saved and shipped, since
    it scores higher and varies less from epoch to epoch than the weights of the last step
    (``null``: the last step's weights). ``encoder_lr_ratio`` scales the rate of a model's
    pretrained encoder: 0 keeps it frozen (the first phase of training a semantic prior), a
    small ratio such as 0.1 fine-tunes it.
    """

    lr: float = 2e-4
    encoder_lr_ratio: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    epochs: int = 100
    schedule: str = "cosine"
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.01
    step_epochs: int = 30
    gamma: float = 0.1
    grad_clip: float | None = 1.0
    ema_decay: float | None = None

    def __post_init__(self) -> None:
        if self.ema_decay is not None and not 0.0 < self.ema_decay < 1.0:
            raise ConfigError(f"optim.ema_decay must be in (0, 1) or null, got {self.ema_decay}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"optim.schedule must be one of {', '.join(SCHEDULES)}, got '{self.schedule}'")
        if self.lr <= 0:
            raise ConfigError(f"optim.lr must be > 0, got {self.lr}")
        if self.encoder_lr_ratio < 0:
            raise ConfigError(f"optim.encoder_lr_ratio must be >= 0, got {self.encoder_lr_ratio}")
        if self.epochs < 1:
            raise ConfigError(f"optim.epochs must be >= 1, got {self.epochs}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        if self.warmup_epochs < 0 or self.step_epochs < 1:
            raise ConfigError("optim.warmup_epochs must be >= 0 and optim.step_epochs >= 1")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"optim.grad_clip must be > 0 or null, got {self.grad_clip}")


@dataclass
class GanConfig:
    """Optional LSGAN term from a conditional PatchGAN discriminator (sees NIR and RGB).

    The generator's loss gains ``weight * lsgan_g_loss``; the discriminator takes one Adam
    step (rate ``d_lr``, default ``optim.lr``) every ``d_every`` generator steps, so the two
    can be balanced: a discriminator that wins too easily gets fewer steps or a lower rate.
    Both join at epoch ``start_epoch``; the epochs before it pre-train the generator on its
    reconstruction losses alone (stage 1), and ``--resume`` continues any stage exactly.
    ``discriminator`` holds the PatchGAN's constructor arguments.
    """

    enabled: bool = False
    weight: float = 0.01
    d_lr: float | None = None
    d_betas: tuple[float, float] = (0.5, 0.999)
    d_every: int = 1
    start_epoch: int = 1
    discriminator: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.start_epoch < 1:
            raise ConfigError(f"gan.start_epoch must be >= 1 (the first epoch), got {self.start_epoch}")
        if self.d_every < 1:
            raise ConfigError(f"gan.d_every must be >= 1, got {self.d_every}")
        if self.weight < 0:
            raise ConfigError(f"gan.weight must be >= 0, got {self.weight}")


@dataclass
class TrainRunConfig:
    """Where results go and how the run is executed.

    The run folder is ``<out_dir>/<name>``, numbered ``-2``, ``-3``... when it is taken.
    ``amp`` applies on CUDA only (bf16 where supported, else fp16 with loss scaling).
    ``max_steps_per_epoch`` shortens epochs for quick checks. ``init`` starts the model from a
    weights file (or a shipped model's name) instead of random values: fine-tuning on one's own
    data, or continuing a shipped model; the file's model config must be the run's.
    """

    out_dir: str = "runs"
    name: str = "train"
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    scan_backend: str = "auto"
    checkpoint_every: int = 1
    log_every: int = 50
    max_steps_per_epoch: int | None = None
    init: str | None = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ConfigError(f"run.device must be one of {', '.join(DEVICES)}, got '{self.device}'")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError("run.checkpoint_every and run.log_every must be >= 1")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ConfigError(f"run.max_steps_per_epoch must be >= 1 or null, got {self.max_steps_per_epoch}")


@dataclass
class TrainConfig:
    """A whole training run.

    ``model`` is a bundled model name (``colormamba-lite``), a model YAML path, or an inline
    mapping ``{arch: ..., <constructor arguments>}``. ``loss`` maps loss terms to weights
    and is handed to :func:`nirstream.core.losses.build_loss` as is.
    """

    model: str | dict[str, Any] = "colormamba-lite"
    data: DataConfig = field(default_factory=DataConfig)
    loss: dict[str, Any] = field(default_factory=lambda: {"l1": 1.0})
    optim: OptimConfig = field(default_factory=OptimConfig)
    gan: GanConfig = field(default_factory=GanConfig)
    run: TrainRunConfig = field(default_factory=TrainRunConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.model, (str, dict)):
            raise ConfigError(f"'model' must be a model name, a YAML path or a mapping, got {self.model!r}")
        if not isinstance(self.loss, dict) or not self.loss:
            raise ConfigError(f"'loss' must map loss terms to weights, got {self.loss!r}")


def load_train_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a training YAML (a path, or the name of a bundled one), apply ``key=value`` overrides, bind."""
    path = Path(path)
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1:
        path = bundled_config("train", path.name)
    data = apply_overrides(load_yaml(path), list(overrides))
    return bind(TrainConfig, data)
