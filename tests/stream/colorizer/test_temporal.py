"""Temporal chroma smoothing: less shimmer on static scenes, no lag across cuts or on moving objects."""

import numpy as np
import pytest
import torch

from nirstream.core.errors import ConfigError
from nirstream.stream.colorizer.temporal import (
    CB_SCALE, CR_SCALE, KB, KG, KR, TemporalConfig, TemporalSmoother, rgb_to_ycbcr, ycbcr_to_rgb,
)

H, W = 32, 40


def make_smoother(**settings) -> TemporalSmoother:
    """A smoother with the settings these tests were written for (in-place chroma averaging,
    alpha 0.6, motion 0.05), changed by ``settings``."""
    return TemporalSmoother(TemporalConfig(**{"alpha": 0.6, "motion_threshold": 0.05, "flow": False, "luma": False,
                                              **settings}))


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """``1×3×H×W`` float [0,1] to ``H×W×3`` uint8, as the colorizer hands frames on."""
    return rgb[0].clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def flicker(frames) -> float:
    """Mean frame-to-frame change of BT.601 Cb and Cr in 8-bit units: a chroma-only figure whose
    value for white noise through an exponential average is known in closed form (CDC, the
    project's flicker metric, mixes in luma and histogram binning)."""
    chromas = []
    for frame in frames:
        rgb = frame.astype(np.float64)
        y = rgb @ np.array([KR, KG, KB])
        chromas.append(np.stack(((rgb[..., 2] - y) / CB_SCALE, (rgb[..., 0] - y) / CR_SCALE), axis=-1))
    return float(np.mean([np.abs(b - a).mean() for a, b in zip(chromas, chromas[1:])]))


def noisy_static_scene(frames: int, seed: int = 0) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Constant luma and NIR; chroma = a fixed pattern plus fresh jitter every frame (in gamut)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.linspace(0.35, 0.65, W).expand(1, 1, H, W)
    base = torch.tensor([0.05, -0.04]).view(1, 2, 1, 1)
    rgbs = []
    for _ in range(frames):
        chroma = base + 0.03 * torch.randn(1, 2, H, W, generator=gen)
        rgb = ycbcr_to_rgb(torch.cat((y, chroma), dim=1))
        assert rgb.min() >= 0 and rgb.max() <= 1  # in gamut, so luma is exactly y
        rgbs.append(rgb)
    nir = y.clone()
    return rgbs, nir


def test_ycbcr_round_trip_is_exact():
    rgb = torch.rand(2, 3, 5, 7)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-6)


def test_static_noisy_chroma_flickers_much_less_and_luma_is_untouched():
    rgbs, nir = noisy_static_scene(40)
    gen = torch.Generator().manual_seed(1)
    smoother = make_smoother(alpha=0.6)
    smoothed = []
    for rgb in rgbs:
        sensor_noise = 0.01 * torch.randn(nir.shape, generator=gen)  # below motion_threshold
        out = smoother(rgb, (nir + sensor_noise).clamp(0, 1))
        assert torch.allclose(rgb_to_ycbcr(out)[:, 0], rgb_to_ycbcr(rgb)[:, 0], atol=1e-6)
        smoothed.append(out)
    raw_flicker = flicker(to_uint8(x) for x in rgbs)
    smooth_flicker = flicker(to_uint8(x) for x in smoothed)
    # White noise through an EMA: the frame-to-frame difference shrinks by sqrt(0.1) ~ 0.32 at alpha 0.6.
    assert smooth_flicker < 0.5 * raw_flicker, (raw_flicker, smooth_flicker)
    assert smooth_flicker == pytest.approx(0.32 * raw_flicker, rel=0.15)


def test_scene_cut_resets_the_average():
    rgbs, nir = noisy_static_scene(6)
    # motion_threshold 1.0: no pixel counts as moving, so only the cut can restart the average
    smoother = make_smoother(alpha=0.6, cut_threshold=0.1, motion_threshold=1.0)
    for rgb in rgbs:
        smoother(rgb, nir)
    new_rgb = torch.rand(1, 3, H, W)
    new_nir = torch.full_like(nir, 0.95)  # a much brighter scene: mean |change| 0.45
    assert torch.allclose(smoother(new_rgb, new_nir), new_rgb, atol=1e-6)

    # Control: the same new colours under an unchanged NIR are blended with the old scene.
    control = make_smoother(alpha=0.6, cut_threshold=0.1, motion_threshold=1.0)
    for rgb in rgbs:
        control(rgb, nir)
    assert (control(new_rgb, nir) - new_rgb).abs().max() > 0.05


def test_size_change_and_reset_start_a_new_average():
    smoother = make_smoother()
    smoother(torch.rand(1, 3, H, W), torch.full((1, 1, H, W), 0.5))
    other = torch.rand(1, 3, H + 2, W)
    assert torch.allclose(smoother(other, torch.full((1, 1, H + 2, W), 0.5)), other, atol=1e-6)
    smoother.reset()
    fresh = torch.rand(1, 3, H + 2, W)
    assert torch.allclose(smoother(fresh, torch.full((1, 1, H + 2, W), 0.5)), fresh, atol=1e-6)


def square_scene(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A bright red square moving right by 4 px a frame over a dim blue-gray background."""
    nir = torch.full((1, 1, H, W), 0.2)
    rgb = torch.empty(1, 3, H, W)
    rgb[:] = torch.tensor([0.15, 0.2, 0.3]).view(1, 3, 1, 1)
    x0 = 4 + 4 * step
    nir[..., 10:20, x0 : x0 + 10] = 0.9
    rgb[..., 10:20, x0 : x0 + 10] = torch.tensor([0.95, 0.2, 0.1]).view(1, 3, 1, 1)
    return rgb, nir


def test_moving_square_keeps_its_own_colour():
    smoother = make_smoother(alpha=0.8)
    for step in range(5):
        rgb, nir = square_scene(step)
        out = smoother(rgb, nir)
    # The 4-px strip the square just moved onto, and the strip it just left, take this frame's colour.
    x0 = 4 + 4 * 4
    assert torch.allclose(out[..., 10:20, x0 + 6 : x0 + 10], rgb[..., 10:20, x0 + 6 : x0 + 10], atol=1e-6)
    assert torch.allclose(out[..., 10:20, x0 - 4 : x0], rgb[..., 10:20, x0 - 4 : x0], atol=1e-6)
    assert torch.allclose(out, rgb, atol=1e-6)  # the rest is static and its colour never changed

    # Control: with motion ignored, the square's leading edge is smeared with the background's colour.
    smearing = make_smoother(alpha=0.8, motion_threshold=10.0, cut_threshold=10.0)
    for step in range(5):
        rgb, nir = square_scene(step)
        smeared = smearing(rgb, nir)
    assert (smeared[..., 10:20, x0 + 6 : x0 + 10] - rgb[..., 10:20, x0 + 6 : x0 + 10]).abs().max() > 0.2


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_output_in_range_with_input_shape_and_dtype(dtype):
    gen = torch.Generator().manual_seed(2)
    smoother = make_smoother(alpha=0.9)
    for _ in range(8):  # luma and chroma both jump around, so blends leave the RGB cube and are clamped
        rgb = torch.rand(2, 3, 9, 11, generator=gen).to(dtype)
        nir = torch.full((2, 1, 9, 11), 0.5, dtype=dtype)
        out = smoother(rgb, nir)
        assert out.shape == rgb.shape and out.dtype == dtype and out.device == rgb.device
        assert out.min() >= 0 and out.max() <= 1


def test_bad_shapes_and_parameters_are_refused():
    with pytest.raises(ConfigError, match="alpha"):
        TemporalConfig(alpha=1.0)
    with pytest.raises(ConfigError, match="thresholds"):
        TemporalConfig(motion_threshold=0.0)
    with pytest.raises(ValueError):
        make_smoother()(torch.rand(1, 3, 4, 4), torch.rand(1, 1, 4, 5))


def test_colorizer_with_temporal_smoothing_flickers_less():
    import torch
    from torch import nn

    from nirstream.stream.colorizer import Colorizer, ColorizerConfig, TemporalConfig
    from nirstream.stream.frame import Frame

    class JitteryColour(nn.Module):
        """A static scene whose predicted colour wobbles from frame to frame, as a real model's can."""

        def forward(self, nir):
            jitter = 0.04 * torch.randn(1, 3, 1, 1)
            return (torch.cat([0.6 * nir, 0.5 * nir + 0.2, 0.4 * nir], dim=1) + jitter).clamp(0, 1)

    nir = (np.linspace(40, 200, 64 * 48).reshape(48, 64)).astype(np.uint8)
    figures = {}
    for enabled in (False, True):
        torch.manual_seed(0)
        config = ColorizerConfig(device="cpu", tile=0, warmup=False, temporal=TemporalConfig(enabled=enabled))
        colorizer = Colorizer(JitteryColour(), config)
        figures[enabled] = flicker(f.rgb for f in colorizer.run(Frame(i, i / 30, 0.0, nir) for i in range(20)))
    assert figures[True] < 0.6 * figures[False]


def panning_scene(frames: int, step: tuple[int, int] = (3, 2), jitter: float = 0.03, seed: int = 0):
    """A textured NIR scene panning ``step`` pixels per frame, and its colours panning with it,
    each frame's chroma jittered afresh (the flicker a per-frame colorizer adds)."""
    gen = torch.Generator().manual_seed(seed)
    size = (96, 128)
    big = torch.nn.functional.interpolate(torch.rand(1, 1, 24, 32, generator=gen), size=(160, 200), mode="bicubic")
    texture = big.clamp(0, 1) * 0.4 + 0.3
    colour = torch.nn.functional.interpolate(0.08 * torch.randn(1, 2, 12, 16, generator=gen), size=(160, 200), mode="bilinear")
    nirs, rgbs, truths = [], [], []
    for t in range(frames):
        dy, dx = t * step[1], t * step[0]
        y = texture[..., dy : dy + size[0], dx : dx + size[1]]
        chroma = colour[..., dy : dy + size[0], dx : dx + size[1]]
        truths.append(ycbcr_to_rgb(torch.cat((y, chroma), dim=1)).clamp(0, 1))
        noisy = chroma + jitter * torch.randn(1, 2, 1, 1, generator=gen)  # the whole frame shifts in hue
        rgbs.append(ycbcr_to_rgb(torch.cat((y, noisy), dim=1)).clamp(0, 1))
        nirs.append(y)
    return nirs, rgbs, truths


def _interior_psnr(a: torch.Tensor, b: torch.Tensor, margin: int = 12) -> float:
    error = (a - b)[..., margin:-margin, margin:-margin].pow(2).mean()
    return float(10 * torch.log10(1 / error))


def test_flow_follows_a_pure_translation_instead_of_smearing_it():
    """Without jitter, the true colours pan with the NIR: the flow smoother keeps them (it averages
    each pixel with where it came from), while averaging in place smears them across the pan."""
    nirs, rgbs, _ = panning_scene(12, jitter=0.0)
    # motion_threshold 1.0: every moved pixel is averaged, so only a flow in the right direction keeps them
    followed = make_smoother(alpha=0.6, flow=True, motion_threshold=1.0)
    in_place = make_smoother(alpha=0.6, motion_threshold=1.0)  # every pixel treated as static
    kept = [followed(rgb, nir) for rgb, nir in zip(rgbs, nirs)]
    smeared = [in_place(rgb, nir) for rgb, nir in zip(rgbs, nirs)]
    assert min(_interior_psnr(k, r) for k, r in zip(kept[1:], rgbs[1:])) > 38.0
    assert np.mean([_interior_psnr(s, r) for s, r in zip(smeared[1:], rgbs[1:])]) < 36.0


def test_flow_smoothing_removes_flicker_that_motion_hides_from_in_place_smoothing():
    nirs, rgbs, truths = panning_scene(20)
    outputs = {
        "none": [to_uint8(rgb) for rgb in rgbs],
        "in place": [to_uint8(s) for s in map(make_smoother(alpha=0.6), rgbs, nirs)],
        "flow": [to_uint8(s) for s in map(make_smoother(alpha=0.6, flow=True), rgbs, nirs)],
    }
    figures = {name: flicker(frames) - flicker([to_uint8(t) for t in truths]) for name, frames in outputs.items()}
    assert figures["flow"] < 0.6 * figures["none"]  # the excess over the true colours' own change
    assert figures["flow"] < figures["in place"]


def test_flow_smoothing_restarts_at_a_cut():
    nirs, rgbs, _ = panning_scene(6)
    other_nirs, other_rgbs, _ = panning_scene(2, seed=5)
    # motion_threshold 1.0: no pixel counts as moving, so only the cut can restart the average
    smoother = make_smoother(alpha=0.6, flow=True, motion_threshold=1.0)
    for rgb, nir in zip(rgbs, nirs):
        smoother(rgb, nir)
    first_of_new_scene = smoother(other_rgbs[0], 1.0 - other_nirs[0])  # a different scene altogether
    assert torch.allclose(first_of_new_scene, other_rgbs[0], atol=1e-5)


def test_flow_reads_the_host_copy_of_the_nir_when_given():
    """A CUDA frame's NIR is in host memory before its upload: the flow reads that copy, and the
    result is the one it would read from the frame itself."""
    nirs, rgbs, _ = panning_scene(6)
    from_frame, from_host = make_smoother(alpha=0.85, flow=True, luma=True), make_smoother(alpha=0.85, flow=True, luma=True)
    for rgb, nir in zip(rgbs, nirs):
        assert torch.equal(from_frame(rgb, nir), from_host(rgb, nir, host_nir=nir.clone()))


def test_flow_smoothing_takes_frames_too_small_for_optical_flow():
    """An 8x8 thumbnail: OpenCV's DIS flow refuses it; the smoother averages it in place."""
    smoother = make_smoother(alpha=0.6, flow=True)
    nir = torch.full((1, 1, 8, 8), 0.5)
    first = smoother(torch.full((1, 3, 8, 8), 0.2), nir)
    second = smoother(torch.full((1, 3, 8, 8), 0.4), nir)
    assert first.shape == second.shape == (1, 3, 8, 8)
    assert 0.2 < float(second.mean()) < 0.4  # averaged with the first frame
