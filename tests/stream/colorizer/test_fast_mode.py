"""Fast mode: reduced-resolution colour, full-resolution detail restored from the NIR."""

import numpy as np
import pytest
import torch
from torch import nn

from nirstream.core.errors import ConfigError
from nirstream.stream.colorizer import Colorizer, ColorizerConfig
from nirstream.stream.colorizer.guided import downscale, guided_upsample
from nirstream.stream.frame import Frame


class LinearColour(nn.Module):
    """RGB as fixed linear functions of the NIR: what a guided filter can restore exactly."""

    def forward(self, nir):
        return torch.cat([0.5 * nir + 0.2, 0.8 * nir, 1.0 - 0.6 * nir], dim=1)


def textured_nir(height=96, width=128):
    y, x = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    return (0.5 + 0.3 * torch.sin(40 * x) * torch.cos(25 * y) + 0.1 * (x > 0.5)).clamp(0, 1)[None, None]


def test_guided_upsampling_restores_a_linear_colour_map_exactly():
    nir = textured_nir()
    low = downscale(nir, 0.5)
    restored = guided_upsample(LinearColour()(low), low, nir, eps=1e-6)  # eps only regularises flat windows
    assert restored.shape == (1, 3, 96, 128)
    torch.testing.assert_close(restored, LinearColour()(nir), atol=2e-3, rtol=0)


def test_guided_upsampling_keeps_detail_that_plain_upsampling_loses():
    nir = textured_nir()
    low = downscale(nir, 0.25)
    truth = LinearColour()(nir)
    plain = torch.nn.functional.interpolate(LinearColour()(low), size=nir.shape[-2:], mode="bilinear")
    guided = guided_upsample(LinearColour()(low), low, nir)
    assert (guided - truth).abs().mean() < 0.25 * (plain - truth).abs().mean()


def test_colorizer_fast_mode_gives_full_size_frames_close_to_full_resolution():
    nir8 = (textured_nir(120, 160)[0, 0].numpy() * 255).astype(np.uint8)
    outputs = {}
    for scale in (1.0, 0.5):
        colorizer = Colorizer(LinearColour(), ColorizerConfig(device="cpu", tile=0, fast_scale=scale, warmup=False))
        outputs[scale] = colorizer.colorize(Frame(0, 0.0, 0.0, nir8)).rgb
    assert outputs[0.5].shape == (120, 160, 3) and outputs[0.5].dtype == np.uint8
    assert np.abs(outputs[0.5].astype(int) - outputs[1.0].astype(int)).mean() < 2.0


def test_fast_scale_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="fast_scale"):
        ColorizerConfig(fast_scale=1.5)
