"""Frame normalisation: fixed and automatic black/white levels for 8- and 16-bit NIR."""



import numpy as np
import pytest
import torch

from nirstream.core.errors import ConfigError
from nirstream.stream.colorizer import Levels, normalize

CPU = torch.device("cpu")


def test_fixed_levels_map_black_to_0_white_to_1_and_clip():
    raw = torch.tensor([[100, 200, 300, 50, 1000]], dtype=torch.uint16)
    out = normalize(raw, Levels(mode="fixed", black=100, white=300))
    assert out.shape == (1, 1, 1, 5)
    assert out.flatten().tolist() == pytest.approx([0.0, 0.5, 1.0, 0.0, 1.0])


def test_default_levels_are_the_dtype_range():
    raw8 = torch.tensor([[0, 255]], dtype=torch.uint8)
    raw16 = torch.tensor([[0, 65535]], dtype=torch.uint16)
    assert normalize(raw8, Levels()).flatten().tolist() == [0.0, 1.0]
    assert normalize(raw16, Levels()).flatten().tolist() == [0.0, 1.0]
    middle = normalize(torch.tensor([[32768]], dtype=torch.uint16), Levels()).item()
    assert middle == pytest.approx(32768 / 65535)  # scaled by 16 bits, not clipped as 8-bit


def test_auto_levels_of_a_16_bit_frame_use_percentiles():
    rng = np.random.default_rng(0)
    frame = rng.integers(1000, 3000, (120, 160)).astype(np.uint16)
    frame.flat[:20] = 0  # hot and dead pixels beyond the percentiles
    frame.flat[20:40] = 65535
    black, white = np.percentile(frame, [0.5, 99.5], method="inverted_cdf")
    out = normalize(torch.from_numpy(frame), Levels(mode="auto", low_pct=0.5, high_pct=99.5))[0, 0].numpy()
    expected = np.clip((frame.astype(np.float64) - black) / (white - black), 0, 1)
    assert np.abs(out - expected).max() < 1e-6
    assert 1000 <= black < 1020 and 2980 < white <= 3000  # the outliers did not set the levels


@pytest.mark.parametrize("dtype", [torch.uint8, torch.uint16])
def test_flat_frame_is_finite(dtype):
    raw = torch.full((2, 8, 9), 7, dtype=dtype)
    for levels in (Levels(mode="auto"), Levels(mode="fixed", black=7, white=7.5)):
        out = normalize(raw, levels)
        assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_bad_levels_are_config_errors():
    with pytest.raises(ConfigError):
        Levels(mode="gamma")
    with pytest.raises(ConfigError):
        Levels(black=10, white=10)


