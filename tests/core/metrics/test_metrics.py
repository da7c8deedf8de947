import math

import numpy as np
import pytest
import torch

from nirstream.core.errors import DataError
from nirstream.core.metrics import (
    colorfulness,
    PSNR_CAP_DB,
    angular_error,
    image_metrics,
    ms_ssim,
    psnr,
    quantize,
    ssim,
)


def _on_levels(batch: int = 2, size: int = 32, low: int = 20, high: int = 200) -> torch.Tensor:
    """Random images whose values sit exactly on 8-bit levels."""
    return torch.randint(low, high, (batch, 3, size, size)).float() / 255.0


def _solid(rgb: tuple[float, float, float], size: int = 16) -> torch.Tensor:
    return torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, size, size).clone()


def test_quantize_rounds_and_clamps_to_levels():
    x = torch.tensor([-0.2, 0.0, 0.3 / 255, 0.6 / 255, 0.5, 1.0, 1.7])
    assert quantize(x).tolist() == [0.0, 0.0, 0.0, 1.0, 128.0, 255.0, 255.0]
    assert quantize(x).dtype == x.dtype


def test_identical_images():
    x = _on_levels()
    m = image_metrics(x, x)
    assert set(m) == {"psnr", "ssim", "ae", "colorfulness", "colorfulness_truth"}
    assert all(v.shape == (2,) for v in m.values())
    assert torch.equal(m["colorfulness"], m["colorfulness_truth"])
    assert torch.equal(m["psnr"], torch.full((2,), PSNR_CAP_DB, dtype=torch.float64))
    torch.testing.assert_close(m["ssim"], torch.ones(2, dtype=torch.float64))
    # The published formula's eps (|p||t| + 1e-6) leaves about 0.1° on identical pixels.
    assert (m["ae"] < 0.3).all() and (m["ae"] > 0).all()


def test_psnr_of_a_known_mse():
    target = _on_levels()
    pred = target + 10 / 255  # every value 10 levels off: MSE = 100
    expected = 10 * math.log10(255**2 / 100)
    torch.testing.assert_close(psnr(pred, target), torch.full((2,), expected, dtype=torch.float64))


def test_psnr_is_per_image():
    target = _on_levels()
    pred = target.clone()
    pred[1] += 5 / 255  # MSE 25 on the second image only
    values = psnr(pred, target)
    assert values[0] == PSNR_CAP_DB
    assert values[1].item() == pytest.approx(10 * math.log10(255**2 / 25))


def test_ssim_of_flat_images_is_the_luminance_term():
    # Flat images have no structure: SSIM reduces to (2ab + C1) / (a² + b² + C1), C1 = (0.01·255)².
    a, b = 100.0, 110.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    value = ssim(_solid((a / 255,) * 3, size=24), _solid((b / 255,) * 3, size=24))
    assert value.item() == pytest.approx(expected, rel=1e-9)


def test_ssim_drops_for_noise():
    target = _on_levels()
    noisy = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)
    assert (ssim(noisy, target) < 0.9).all()


def test_orthogonal_colours_are_90_degrees():
    red, green = _solid((1.0, 0.0, 0.0)), _solid((0.0, 1.0, 0.0))
    assert angular_error(red, green).item() == pytest.approx(90.0)
    yellow = _solid((1.0, 1.0, 0.0))
    assert angular_error(yellow, red).item() == pytest.approx(45.0)


def test_angular_error_ignores_brightness_and_scores_black_as_90_degrees():
    x = _solid((100 / 255, 50 / 255, 25 / 255))
    assert angular_error(x, 2 * x).item() == pytest.approx(0.0, abs=0.3)
    black = torch.zeros(1, 3, 8, 8)
    assert angular_error(black, black).item() == pytest.approx(90.0)
    assert angular_error(black, _solid((0.3, 0.6, 0.9), size=8)).item() == pytest.approx(90.0)


def test_ssim_and_ae_match_the_published_evaluation_code():
    """ColorMamba's tools.py: skimage SSIM (data_range 1, channel_axis -1) and arccos AE."""
    metrics = pytest.importorskip("skimage.metrics")
    np = pytest.importorskip("numpy")
    target = _on_levels(batch=1, size=40, low=0, high=256)
    pred = (target + 0.15 * torch.randn_like(target)).clamp(0, 1)
    p = quantize(pred)[0].permute(1, 2, 0).double().numpy() / 255
    t = quantize(target)[0].permute(1, 2, 0).double().numpy() / 255
    expected_ssim = metrics.structural_similarity(p, t, data_range=1, channel_axis=-1)
    cosine = (p * t).sum(2) / (np.sqrt((p * p).sum(2)) * np.sqrt((t * t).sum(2)) + 1e-6)
    expected_ae = np.degrees(np.arccos(cosine)).mean()
    assert ssim(pred, target).item() == pytest.approx(expected_ssim, rel=1e-9)
    assert angular_error(pred, target).item() == pytest.approx(expected_ae, rel=1e-9)


def test_sub_level_differences_vanish_after_quantization():
    target = _on_levels()
    below = image_metrics(target + 0.4 / 255, target)
    assert torch.equal(below["psnr"], torch.full((2,), PSNR_CAP_DB, dtype=torch.float64))
    assert torch.equal(below["ae"], image_metrics(target, target)["ae"])
    # 0.6 of a level rounds up to the next level: an MSE of exactly 1.
    above = psnr(target + 0.6 / 255, target)
    torch.testing.assert_close(above, torch.full((2,), 10 * math.log10(255**2), dtype=torch.float64))


def test_ms_ssim_needs_more_than_160_px():
    small = torch.rand(1, 3, 160, 200)
    with pytest.raises(DataError, match="160×200"):
        ms_ssim(small, small)
    x = _on_levels(batch=1, size=176)
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(1, dtype=torch.float64))
    noisy = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert ms_ssim(noisy, x).item() < 0.99


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        psnr(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))


def test_colorfulness_by_hand():
    """Hasler and Süsstrunk: sqrt(var rg + var yb) + 0.3 sqrt(mean rg² + mean yb²), on 8-bit levels."""
    gray = torch.full((1, 3, 4, 4), 0.5)
    assert colorfulness(gray).item() == 0.0
    flat = torch.tensor([200.0, 100.0, 50.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2) / 255
    # rg = 100, yb = 150 - 50 = 100 everywhere: no spread, 0.3 * sqrt(2) * 100
    assert colorfulness(flat).item() == pytest.approx(0.3 * math.sqrt(2) * 100, abs=1e-9)
    red_and_black = torch.zeros(1, 3, 1, 2)
    red_and_black[0, 0, 0, 0] = 1.0  # rg = (255, 0), yb = (127.5, 0)
    spread = math.sqrt(127.5**2 + 63.75**2)  # population standard deviations of both
    assert colorfulness(red_and_black).item() == pytest.approx(spread + 0.3 * spread, abs=1e-9)
    assert colorfulness(torch.cat([gray[..., :1, :2], red_and_black])).shape == (2,)


def _flat(r: int, g: int, b: int, size: int = 4) -> np.ndarray:
    frame = np.empty((size, size, 3), np.uint8)
    frame[:] = (r, g, b)
    return frame


def test_cdc_by_hand_on_synthetic_sequences():
    from nirstream.core.metrics import cdc

    a, b = _flat(10, 10, 10), _flat(20, 20, 20)
    assert cdc([a] * 6) == 0.0
    # A B A B A B: every step-1 pair is two disjoint histograms (JS = ln 2 in every channel),
    # every step-2 and step-4 pair is identical: CDC = (ln 2 + 0 + 0) / 3.
    assert cdc([a, b] * 3) == pytest.approx(math.log(2) / 3, abs=1e-12)
    # P: red half at level 0, half at 1; Q: half at 0, half at 2. Red histograms [.5, .5, 0] and
    # [.5, 0, .5] against their mean [.5, .25, .25]: JS = 0.5 ln 2; green and blue agree. P Q P Q P:
    # step 1 gives ln 2 / 6 (the channel mean), steps 2 and 4 give 0: CDC = ln 2 / 18.
    p, q = _flat(0, 0, 0), _flat(0, 0, 0)
    p[:2, :, 0], q[:2, :, 0] = 1, 2
    assert cdc([p, q, p, q, p]) == pytest.approx(math.log(2) / 18, abs=1e-12)


def test_cdc_needs_a_pair_at_every_step_and_leaves_cuts_out():
    from nirstream.core.metrics import CDCMeter, cdc

    a, b = _flat(10, 10, 10), _flat(200, 0, 0)
    assert cdc([a] * 4) is None  # no t+4 pair yet
    # Two steady shots with a cut between: nothing flickers within a shot.
    assert cdc([a] * 5 + [b] * 5, cuts={5}) == 0.0
    assert cdc([a] * 5 + [b] * 5) > 0.0  # the same frames with the cut counted
    meter = CDCMeter()
    for frame in [a] * 5:
        meter.add(frame)
    assert meter.value == 0.0

def test_scene_cuts_are_a_large_mean_change_or_a_new_size():
    from nirstream.core.metrics import SCENE_CUT, SceneCuts

    cuts = SceneCuts(full_scale=255)
    dark = np.full((32, 32), 100, np.uint8)
    just_below = dark + np.uint8(int(SCENE_CUT * 255))  # a change of 25 levels: not above 10 % of 255
    assert [cuts(dark), cuts(just_below), cuts(dark + 60), cuts(np.zeros((16, 32), np.uint8))] == [False, False, True, True]
    sixteen = SceneCuts(full_scale=65535)  # 16-bit frames: the same share of their full scale
    assert [sixteen(np.full((8, 8), 1000, np.uint16)), sixteen(np.full((8, 8), 9000, np.uint16))] == [False, True]
