import math
from pathlib import Path

import pytest
import pytorch_msssim
import torch
import torch.nn.functional as F

from nirstream.core.colorspace import rgb_to_hsv
from nirstream.core.errors import ConfigError, WeightsError
from nirstream.core.losses import LOSS_TERMS, build_loss, lsgan_d_loss, lsgan_g_loss
from nirstream.core.losses.histogram import soft_histogram
from nirstream.core.losses.perceptual import VGGPerceptualLoss, vgg19_features
from nirstream.core.losses.structural import MSSSIMLoss, fitting_window, ms_ssim
from nirstream.core.metrics.image_quality import colorfulness
from nirstream.core.models.patchgan import PatchGANDiscriminator


def _smooth_image(batch: int = 2, size: int = 48) -> torch.Tensor:
    """Random but spatially correlated colours, like a photo rather than white noise."""
    coarse = torch.rand(batch, 3, size // 8, size // 8)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _outputs(rgb: torch.Tensor, requires_grad: bool = False) -> dict[str, torch.Tensor]:
    rgb = rgb.clone().requires_grad_(requires_grad)
    hsv = rgb_to_hsv(rgb.detach()).requires_grad_(requires_grad)
    return {"rgb": rgb, "hsv": hsv}


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory) -> Path:
    """A randomly initialised VGG-19 ``features`` state dict, as torchvision saves it."""
    torch.manual_seed(1)
    features, _ = vgg19_features()
    path = tmp_path_factory.mktemp("vgg") / "vgg19_features.pth"
    torch.save(features.state_dict(), path)
    return path


# Terms that run without external weights, with the options that exercise their variants.
SELF_CONTAINED = {
    "mse": 1.0,
    "l1": 1.0,
    "cosine": 1.0,
    "ms_ssim": 1.0,
    "hsv": 1.0,
    "colourfulness": 1.0,
    "histogram": 1.0,
    "histogram_triangular_kl": {"weight": 1.0, "kernel": "triangular", "distance": "kl", "bins": 16},
}


def _spec(case: str) -> dict:
    return {case.split("_triangular")[0]: SELF_CONTAINED[case]}


@pytest.mark.parametrize("case", SELF_CONTAINED)
def test_term_is_zero_for_identical_and_positive_for_different(case):
    loss = build_loss(_spec(case))
    target = _smooth_image()
    same, _ = loss(_outputs(target), target)
    other, _ = loss(_outputs(_smooth_image()), target)
    assert abs(same.item()) < 1e-5
    assert other.item() > 1e-3


@pytest.mark.parametrize("case", SELF_CONTAINED)
def test_term_gradients_flow_and_are_finite(case):
    loss = build_loss(_spec(case))
    target = _smooth_image()
    pred = _outputs(_smooth_image(), requires_grad=True)
    total, _ = loss(pred, target)
    total.backward()
    key = "hsv" if case == "hsv" else "rgb"
    grad = pred[key].grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_gradients_finite_on_flat_and_black_images():
    loss = build_loss({name: 1.0 for name in ("mse", "l1", "cosine", "ms_ssim", "hsv", "histogram", "colourfulness")})
    target = torch.zeros(1, 3, 48, 48)
    target[..., 24:] = 0.5  # black and gray halves: no hue, no structure
    pred = _outputs(torch.zeros(1, 3, 48, 48), requires_grad=True)
    total, _ = loss(pred, target)
    total.backward()
    assert torch.isfinite(pred["rgb"].grad).all() and torch.isfinite(pred["hsv"].grad).all()


def test_weights_compose_into_the_total():
    loss = build_loss({"l1": 2.0, "mse": {"weight": 0.5}, "cosine": 3})
    target, pred = _smooth_image(), _smooth_image()
    total, terms = loss({"rgb": pred}, target)
    assert set(terms) == {"l1", "mse", "cosine"}
    assert terms["l1"] == pytest.approx(F.l1_loss(pred, target).item(), rel=1e-6)
    assert terms["mse"] == pytest.approx(F.mse_loss(pred, target).item(), rel=1e-6)
    weighted_sum = 2.0 * terms["l1"] + 0.5 * terms["mse"] + 3.0 * terms["cosine"]
    assert total.item() == pytest.approx(weighted_sum, rel=1e-6)


def test_unknown_term_names_it_and_lists_the_allowed():
    with pytest.raises(ConfigError, match=r"unknown loss term 'perceptual'; allowed: mse, l1, cosine"):
        build_loss({"l1": 1.0, "perceptual": 1.0})


def test_unknown_option_names_it_and_lists_the_allowed():
    message = r"unknown option 'nbins' for loss term 'histogram'; allowed: weight, bins"
    with pytest.raises(ConfigError, match=message):
        build_loss({"histogram": {"weight": 1.0, "nbins": 32}})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "expected a mapping"),
        ({"l1": {"bins": 3}}, "needs a 'weight'"),
        ({"l1": -1.0}, "weight must be a finite number >= 0"),
        ({"l1": "heavy"}, "weight must be"),
        ({"histogram": {"weight": 1, "kernel": "box"}}, "'kernel' is 'box'; allowed: gaussian, triangular"),
        ({"histogram": {"weight": 1, "distance": "emd"}}, "allowed: kl, chi2"),
        ({"ms_ssim": {"weight": 1, "win_size": 10}}, "odd integer"),
    ],
)
def test_bad_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        build_loss(spec)


def test_missing_model_output_is_named():
    loss = build_loss({"l1": 1.0, "hsv": 1.0})
    assert loss.required_outputs == {"rgb", "hsv"}
    target = _smooth_image()
    with pytest.raises(ConfigError, match="loss term 'hsv' needs the model output 'hsv'.*outputs: rgb"):
        loss({"rgb": target}, target)


def test_mismatched_output_shape_is_rejected():
    loss = build_loss({"l1": 1.0})
    with pytest.raises(ValueError, match="shape"):
        loss({"rgb": torch.rand(1, 3, 8, 8)}, torch.rand(1, 3, 8, 9))


# --- MS-SSIM ---------------------------------------------------------------------------


def test_fitting_window_shrinks_only_when_the_crop_is_small():
    assert fitting_window(200, 11) == 11
    assert fitting_window(128, 11) == 7
    assert fitting_window(40, 11) == 3
    assert fitting_window(32, 11) == 0


def test_ms_ssim_equals_pytorch_msssim_on_a_200px_crop():
    target = _smooth_image(batch=1, size=200)
    pred = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    expected = 1 - pytorch_msssim.ms_ssim(pred, target, data_range=1.0)
    value = MSSSIMLoss()({"rgb": pred}, target)
    torch.testing.assert_close(value, expected)


@pytest.mark.parametrize("shape", [(4, 3, 200, 200), (2, 3, 201, 233), (1, 1, 170, 300)])
def test_fast_ms_ssim_matches_pytorch_msssim_in_value_and_gradient(shape):
    """The banded-matrix filtering is pytorch_msssim's MS-SSIM, odd sides (pooling pads) included."""
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(shape, generator=generator)
    start = (0.6 * target + 0.4 * torch.rand(shape, generator=generator)).requires_grad_(True)
    ours = ms_ssim(start, target)
    (grad_ours,) = torch.autograd.grad(ours, start)
    theirs = pytorch_msssim.ms_ssim(start, target, data_range=1.0)
    (grad_theirs,) = torch.autograd.grad(theirs, start)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=1e-4, atol=1e-4 * float(grad_theirs.abs().max()))


def test_cosine_term_equals_torch_cosine_similarity():
    generator = torch.Generator().manual_seed(2)
    pred, target = torch.rand(2, 3, 9, 7, generator=generator), torch.rand(2, 3, 9, 7, generator=generator)
    pred[0, :, 0, 0] = 0.0  # a black pixel: the offset keeps its direction defined
    offset = 1.0 / 255.0
    expected = 1 - F.cosine_similarity(pred + offset, target + offset, dim=1).mean()
    torch.testing.assert_close(build_loss({"cosine": 1.0})({"rgb": pred}, target)[1]["cosine"], float(expected))


@pytest.mark.parametrize("size", [128, 40])
def test_ms_ssim_works_below_pytorch_msssims_limit(size):
    target = _smooth_image(batch=1, size=size)
    pred = (target + 0.05 * torch.randn_like(target)).clamp(0, 1)
    loss = MSSSIMLoss()
    assert loss({"rgb": target}, target).abs().item() < 1e-5
    assert 0 < loss({"rgb": pred}, target).item() < 1


def test_ms_ssim_too_small_crop_is_explained():
    tiny = torch.rand(1, 3, 8, 8)
    with pytest.raises(ConfigError, match="larger than 32 px, got 8×8"):
        MSSSIMLoss()({"rgb": tiny}, tiny)


# --- Histogram -------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["gaussian", "triangular"])
def test_soft_histogram_is_a_distribution_peaked_at_the_value(kernel):
    bins = 8
    centre_of_bin_5 = (5 + 0.5) / bins
    x = torch.full((1, 3, 4, 4), centre_of_bin_5)
    histogram = soft_histogram(x, bins, kernel)
    torch.testing.assert_close(histogram.sum(-1), torch.ones(1, 3))
    assert (histogram.argmax(-1) == 5).all()
    if kernel == "triangular":  # exactly on a centre: all the vote goes to that bin
        assert torch.equal(histogram[0, 0], F.one_hot(torch.tensor(5), bins).float())


@pytest.mark.parametrize("spec", [1.0, {"weight": 1.0, "kernel": "triangular", "distance": "kl"}])
def test_histogram_sees_colour_shifts_but_not_positions(spec):
    loss = build_loss({"histogram": spec})
    target = _smooth_image(size=32) * 0.8
    values = []
    for shift in (0.0, 0.05, 0.15):
        shifted = target.clone()
        shifted[:, 0] += shift  # redder
        values.append(loss({"rgb": shifted}, target)[0].item())
    assert values[0] < 1e-5 < values[1] < values[2]
    shuffled = target.flatten(2)[..., torch.randperm(32 * 32)].view_as(target)
    assert loss({"rgb": shuffled}, target)[0].item() < 1e-5
    assert F.l1_loss(shuffled, target) > 0.05  # a pixel loss would see the shuffle


def test_histogram_distances_of_disjoint_palettes_are_bounded():
    dark, light = torch.full((1, 3, 8, 8), 0.1), torch.full((1, 3, 8, 8), 0.9)
    chi2 = build_loss({"histogram": {"weight": 1.0, "distance": "chi2"}})
    kl = build_loss({"histogram": {"weight": 1.0, "distance": "kl"}})
    # No shared bins: Σ (p - t)² / (p + t) = Σ p + Σ t = 2 per channel.
    assert chi2({"rgb": dark}, light)[0].item() == pytest.approx(2.0, rel=1e-5)
    assert 0 < kl({"rgb": dark}, light)[0].item() < -math.log(1e-4) + 1e-3


# --- VGG perceptual --------------------------------------------------------------------


def test_vgg_without_weights_path_says_it_cannot_download():
    with pytest.raises(ConfigError, match="cannot be downloaded here.*local path"):
        build_loss({"vgg": 1.0})
    with pytest.raises(ConfigError, match="weights_path"):
        build_loss({"combined": 1.0})


def test_vgg_with_missing_or_wrong_file(tmp_path):
    with pytest.raises(WeightsError, match="not found at"):
        build_loss({"vgg": {"weight": 1.0, "weights_path": str(tmp_path / "absent.pth")}})
    wrong = tmp_path / "wrong.pth"
    torch.save({"0.weight": torch.zeros(2, 2)}, wrong)
    with pytest.raises(WeightsError, match="not a VGG-19 state dict"):
        VGGPerceptualLoss(weights_path=str(wrong))


def test_vgg_loads_features_and_full_model_state_dicts(vgg_weights, tmp_path):
    features_only = VGGPerceptualLoss(weights_path=str(vgg_weights))
    saved = torch.load(vgg_weights, weights_only=True)
    torchvision_style = {f"features.{key}": value for key, value in saved.items()}
    torchvision_style["classifier.0.weight"] = torch.zeros(4, 4)
    full_path = tmp_path / "vgg19_full.pth"
    torch.save(torchvision_style, full_path)
    full = VGGPerceptualLoss(weights_path=str(full_path))
    for loss in (features_only, full):
        torch.testing.assert_close(loss.features[0].weight, saved["0.weight"])
        torch.testing.assert_close(loss.features[23].bias, saved["23.bias"])
    # Cut after relu4_4, the deepest default layer (index 26).
    assert len(features_only.features) == 27


def test_vgg_loss_behaviour(vgg_weights):
    spec = {"weight": 1.0, "weights_path": str(vgg_weights), "layers": ["relu1_2", "relu2_2"]}
    loss = build_loss({"vgg": spec})
    vgg = loss.terms["vgg"]
    assert not any(p.requires_grad for p in vgg.parameters())
    loss.train()
    assert not vgg.features.training
    target = _smooth_image(size=32)
    same, _ = loss({"rgb": target}, target)
    assert same.item() == 0.0
    pred = _outputs(_smooth_image(size=32), requires_grad=True)
    different, _ = loss(pred, target)
    assert different.item() > 0
    different.backward()
    assert torch.isfinite(pred["rgb"].grad).all() and pred["rgb"].grad.abs().sum() > 0


def test_vgg_unknown_layer_is_named(vgg_weights):
    with pytest.raises(ConfigError, match="unknown VGG layer 'relu6_1'; allowed: relu1_1"):
        VGGPerceptualLoss(weights_path=str(vgg_weights), layers=["relu6_1"])


def test_combined_is_the_weighted_sum_of_its_parts(vgg_weights):
    spec = {
        "weight": 1.0,
        "weights_path": str(vgg_weights),
        "layers": ["relu1_2"],
        "vgg_weight": 0.5,
        "cosine_weight": 2.0,
        "bins": 16,
    }
    combined = build_loss({"combined": spec}).terms["combined"]
    target, pred = _smooth_image(size=32), {"rgb": _smooth_image(size=32)}
    expected = (
        0.5 * combined.vgg(pred, target)
        + 1.0 * combined.histogram(pred, target)
        + 2.0 * combined.cosine(pred, target)
    )
    torch.testing.assert_close(combined(pred, target), expected)
    assert combined({"rgb": target}, target).abs().item() < 1e-5
    assert set(LOSS_TERMS) >= {"mse", "l1", "cosine", "ms_ssim", "hsv", "histogram", "vgg", "combined"}


# --- Adversarial -----------------------------------------------------------------------


def test_lsgan_losses_have_their_minima_at_the_labels():
    ones, zeros = torch.ones(2, 1, 30, 30), torch.zeros(2, 1, 30, 30)
    assert lsgan_d_loss(ones, zeros).item() == 0.0  # perfect discriminator
    assert lsgan_d_loss(zeros, ones).item() == pytest.approx(1.0)  # fully fooled
    assert lsgan_g_loss(ones).item() == 0.0  # fakes scored real
    assert lsgan_g_loss(zeros).item() == pytest.approx(1.0)
    # Gradient descent on the scores moves them towards the labels.
    real, fake = torch.full((4,), 0.3, requires_grad=True), torch.full((4,), 0.6, requires_grad=True)
    lsgan_d_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    fake_for_g = torch.full((4,), 0.6, requires_grad=True)
    lsgan_g_loss(fake_for_g).backward()
    assert (fake_for_g.grad < 0).all()


def test_patchgan_scores_a_map_of_overlapping_patches():
    disc = PatchGANDiscriminator(base_channels=16)
    assert disc.receptive_field == 70
    nir, rgb = torch.rand(2, 1, 256, 256), torch.rand(2, 3, 256, 256)
    scores = disc(nir, rgb)
    assert scores.shape == (2, 1, 30, 30)  # pix2pix's 30×30 map for 256 px
    assert disc.net[0].in_channels == 4
    with pytest.raises(ValueError, match="conditional"):
        disc(None, rgb)
    unconditional = PatchGANDiscriminator(nir_channels=0, base_channels=8, num_layers=2, norm="batch")
    assert unconditional(None, torch.rand(1, 3, 64, 64)).shape == (1, 1, 14, 14)
    assert unconditional.receptive_field == 34


def test_patchgan_score_depends_only_on_its_patch():
    # Batch norm in eval mode is per-pixel affine, so each score's input support is its patch.
    disc = PatchGANDiscriminator(base_channels=8, norm="batch").eval()
    rgb = torch.rand(1, 3, 128, 128, requires_grad=True)
    nir = torch.rand(1, 1, 128, 128)
    scores = disc(nir, rgb)
    scores[0, 0, 7, 7].backward()
    rows, cols = torch.nonzero(rgb.grad[0].abs().sum(0), as_tuple=True)
    assert rows.max() - rows.min() + 1 == disc.receptive_field
    assert cols.max() - cols.min() + 1 == disc.receptive_field


def test_colourfulness_term_is_the_metric_difference_and_pushes_muted_colour_out():
    target = _smooth_image()
    gray = target.mean(dim=1, keepdim=True)
    muted = (gray + 0.5 * (target - gray)).requires_grad_(True)  # half the chroma
    loss = build_loss({"colourfulness": 1.0})
    total, _ = loss({"rgb": muted}, target)
    by_metric = (colorfulness(target) - colorfulness(muted.detach())).abs().mean() / 255.0
    assert total.item() == pytest.approx(by_metric.item(), rel=0.02)  # the metric is on 8-bit levels
    total.backward()
    step = muted.detach() - 0.5 * muted.grad  # a descent step moves away from the gray
    chroma = lambda image: (image - image.mean(dim=1, keepdim=True)).abs().mean()  # noqa: E731
    assert chroma(step) > chroma(muted.detach())
