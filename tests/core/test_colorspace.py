import colorsys

import pytest
import torch

from nirstream.core.colorspace import hsv_to_rgb, rgb_to_hsv


def _pixels(values: list[tuple[float, float, float]]) -> torch.Tensor:
    """A 1×3×1×N image whose pixels are the given triples."""
    return torch.tensor(values, dtype=torch.float64).T.reshape(1, 3, 1, len(values))


KNOWN = [
    # (r, g, b) -> (h, s, v)
    ((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)),
    ((0.0, 1.0, 0.0), (1 / 3, 1.0, 1.0)),
    ((0.0, 0.0, 1.0), (2 / 3, 1.0, 1.0)),
    ((1.0, 1.0, 0.0), (1 / 6, 1.0, 1.0)),
    ((0.0, 1.0, 1.0), (1 / 2, 1.0, 1.0)),
    ((1.0, 0.0, 1.0), (5 / 6, 1.0, 1.0)),
    ((0.5, 0.25, 0.25), (0.0, 0.5, 0.5)),
    ((0.5, 0.5, 0.5), (0.0, 0.0, 0.5)),
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 1.0, 1.0), (0.0, 0.0, 1.0)),
]


def test_known_colours_convert_both_ways():
    rgb = _pixels([c for c, _ in KNOWN])
    hsv = _pixels([h for _, h in KNOWN])
    torch.testing.assert_close(rgb_to_hsv(rgb), hsv)
    torch.testing.assert_close(hsv_to_rgb(hsv), rgb)


def test_matches_colorsys_on_random_colours():
    rgb = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    hsv = rgb_to_hsv(rgb)
    expected = [colorsys.rgb_to_hsv(*px) for px in rgb.permute(0, 2, 3, 1).reshape(-1, 3).tolist()]
    expected = torch.tensor(expected, dtype=torch.float64).reshape(2, 8, 8, 3).permute(0, 3, 1, 2)
    torch.testing.assert_close(hsv, expected)


def test_round_trip_and_hue_range():
    rgb = torch.rand(4, 3, 16, 16)
    hsv = rgb_to_hsv(rgb)
    assert hsv.min() >= 0 and hsv[:, 0].max() < 1 and hsv[:, 1:].max() <= 1
    torch.testing.assert_close(hsv_to_rgb(hsv), rgb, atol=1e-5, rtol=0)


def test_hue_wraps_modulo_one():
    hsv = _pixels([(0.25, 0.8, 0.6)])
    wrapped = hsv.clone()
    wrapped[:, 0] += 1.0
    torch.testing.assert_close(hsv_to_rgb(wrapped), hsv_to_rgb(hsv))


def test_hue_just_below_zero_stays_in_range():
    # b one float step above g on a red pixel: the angle is a tiny negative number that
    # float32 rounds to a full turn.
    half = torch.tensor(0.5)
    rgb = torch.stack([torch.tensor(1.0), half, torch.nextafter(half, torch.tensor(1.0))])
    rgb = rgb.view(1, 3, 1, 1)
    hue = rgb_to_hsv(rgb)[:, 0]
    assert 0 <= hue.item() < 1


@pytest.mark.parametrize("colour", [(0.5, 0.5, 0.5), (0.0, 0.0, 0.0), (0.7, 0.7, 0.2)])
def test_gradients_finite_at_gray_black_and_ties(colour):
    rgb = _pixels([colour]).float().requires_grad_(True)
    (rgb_to_hsv(rgb) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)).sum().backward()
    assert torch.isfinite(rgb.grad).all()

    hsv = _pixels([(0.0, 0.0, 0.0)]).float().requires_grad_(True)
    hsv_to_rgb(hsv).sum().backward()
    assert torch.isfinite(hsv.grad).all()


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match="B×3×H×W"):
        rgb_to_hsv(torch.rand(3, 4, 4))
