"""ColorMamba and the model registry: shapes, independence, gradients, scan layout, configs."""

import json

import pytest
import torch

from nirstream.core.config import bundled_names
from nirstream.core.errors import ConfigError
from nirstream.core.models import build_model, list_models, load_model_config, register_model
from nirstream.core.models.colormamba import ColorMamba

from conftest import TINY_COLORMAMBA
from nirstream.core.models.ss2d import SS2D
from nirstream.core.models import set_scan_backend, use_scan_backend
from nirstream.core.ops import selective_scan

TINY = dict(
    arch="colormamba", ngf=8, nfg=4, width_mults=[1, 2], depths=[1, 1], decoder_depths=[1],
    conv_depths=[1, 0], stem_stride=2, d_state=4, expand=1.0, mlp_ratio=1.0,
    attn_reduction=4, attn_window=3, spade_hidden=8,
)


def tiny(**overrides) -> ColorMamba:
    return build_model({**TINY, **overrides})


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("size", [(37, 53), (64, 64), (5, 7)])
def test_any_size_maps_to_rgb_and_hsv_in_unit_range(size):
    model = tiny().eval()
    with torch.no_grad():
        out = model.forward_with_aux(torch.rand(2, 1, *size))
        rgb = model(torch.rand(2, 1, *size))
    for y in (out["rgb"], out["hsv"], rgb):
        assert y.shape == (2, 3, *size)
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


def test_forward_matches_forward_with_aux():
    model = tiny().eval()
    x = torch.rand(1, 1, 24, 40)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_with_aux(x)["rgb"])


@pytest.mark.parametrize("train", [False, True])
def test_an_image_output_does_not_depend_on_the_rest_of_the_batch(train):
    model = tiny().train(train)
    first, other = torch.rand(1, 1, 32, 48), torch.rand(1, 1, 32, 48)
    with torch.no_grad():
        alone = model.forward_with_aux(first)
        batched = model.forward_with_aux(torch.cat([first, other]))
    for key in ("rgb", "hsv"):
        torch.testing.assert_close(batched[key][:1], alone[key], atol=1e-5, rtol=0)
    assert not torch.allclose(batched["rgb"][0], batched["rgb"][1])


def test_gradients_reach_every_parameter():
    model = tiny()
    out = model.forward_with_aux(torch.rand(2, 1, 32, 32))
    weights = torch.randn_like(out["rgb"])  # random so no parameter's gradient cancels by symmetry
    ((out["rgb"] * weights).sum() + (out["hsv"] * weights).sum()).backward()
    dead = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert dead == []
    names = [name for name, _ in model.named_parameters()]
    for part in ("g_a.", "g_b.", "A_log", "pad_tokens", "spade"):
        assert any(part in name for name in names), part


def manual_ss2d_scan(module: SS2D, x: torch.Tensor) -> torch.Tensor:
    """SS2D.scan written out one direction at a time, through explicit token orders."""
    b, d, h, w = x.shape
    grid = torch.arange(h * w).view(h, w)
    orders = [grid.flatten(), grid.t().flatten(), grid.flatten().flip(0), grid.t().flatten().flip(0)]
    A = -torch.exp(module.A_log).view(4, d, -1)
    out = torch.zeros(b, d, h * w)
    for k, order in enumerate(orders):
        seq = x.flatten(2)[:, :, order]  # b, d, L in this direction's order
        proj = torch.einsum("bdl,cd->bcl", seq, module.x_proj_weight[k])
        dt, B, C = proj.split([module.dt_rank, module.d_state, module.d_state], dim=1)
        dt = torch.einsum("brl,dr->bdl", dt, module.dt_proj_weight[k])
        y = selective_scan(
            seq, dt, A[k], B, C, module.D.view(4, d)[k],
            delta_bias=module.dt_proj_bias[k], delta_softplus=True, backend="reference",
        )
        out[:, :, order] += y
    return out.view(b, d, h, w)


def test_ss2d_scans_all_four_directions_with_their_own_parameters():
    module = SS2D(dim=6, d_state=3, expand=1.0, scan_backend="reference")
    x = torch.randn(2, 6, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(module.scan(x), manual_ss2d_scan(module, x), atol=1e-5, rtol=1e-5)
    # and each direction's projections change the result
    module.scan(x).square().sum().backward()
    assert (module.x_proj_weight.grad.abs().sum(dim=(1, 2)) > 0).all()
    assert (module.A_log.grad.view(4, -1).abs().sum(dim=1) > 0).all()


def test_ss2d_is_transpose_equivariant_once_row_and_column_roles_swap():
    """Transposing the input and swapping the row/column scans (and borders) transposes the output."""
    module = SS2D(dim=4, d_state=3, expand=2.0)
    swapped = SS2D(dim=4, d_state=3, expand=2.0)
    d = module.d_inner
    with torch.no_grad():
        module.pad_tokens.normal_()  # large enough that a misplaced border would show
        module.A_log.add_(torch.rand_like(module.A_log))  # make the directions differ
        module.D.normal_()
        swapped.load_state_dict(module.state_dict())
        for name in ("x_proj_weight", "dt_proj_weight", "dt_proj_bias"):
            getattr(swapped, name).copy_(getattr(module, name)[[1, 0, 3, 2]])
        for name in ("A_log", "D"):
            per_direction = getattr(module, name).view(4, d, -1)
            getattr(swapped, name).copy_(per_direction[[1, 0, 3, 2]].reshape_as(getattr(module, name)))
        swapped.pad_tokens.copy_(module.pad_tokens[[2, 3, 0, 1]])  # top/bottom <-> left/right
        swapped.conv.weight.copy_(module.conv.weight.transpose(2, 3))
        x = torch.randn(1, 4, 6, 9)
        expected = module(x).transpose(2, 3)
        torch.testing.assert_close(swapped(x.transpose(2, 3)), expected, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(module(x.transpose(2, 3)), expected, atol=1e-3)


def test_padding_tokens_reach_the_output():
    module = SS2D(dim=4, d_state=3)
    x = torch.randn(1, 4, 6, 6)
    with torch.no_grad():
        before = module(x)
        module.pad_tokens.add_(1.0)
        assert not torch.allclose(before, module(x), atol=1e-4)


def test_reference_and_chunked_scans_give_the_same_model_output():
    model = tiny().eval()
    x = torch.rand(1, 1, 36, 44)
    with torch.no_grad():
        with use_scan_backend(model, "reference"):
            ref = model.forward_with_aux(x)
        set_scan_backend(model, "chunked")
        out = model.forward_with_aux(x)
    for key in ("rgb", "hsv"):
        torch.testing.assert_close(out[key], ref[key], atol=1e-5, rtol=1e-4)


def test_bfloat16_autocast_stays_close_to_fp32():
    model = tiny().eval()
    nir = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        full = model(nir)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(nir)
    assert half.shape == (1, 3, 32, 32) and torch.isfinite(half.float()).all()
    assert (half.float() - full).abs().max() < 0.02  # bf16 keeps ~3 digits; the scan stays fp32


def test_unknown_config_key_is_named_with_the_allowed_ones():
    with pytest.raises(ConfigError, match="'ngff'.*allowed: arch, ngf, nfg"):
        build_model({**TINY, "ngff": 8})
    with pytest.raises(ConfigError, match="unknown model arch 'colormambo'.*colormamba"):
        build_model({"arch": "colormambo"})
    with pytest.raises(ConfigError, match="needs an 'arch'"):
        build_model({"ngf": 8})
    with pytest.raises(ConfigError, match="decoder_depths needs 1"):
        build_model({**TINY, "decoder_depths": [1, 1]})


def test_config_round_trip_rebuilds_an_identical_model():
    model = tiny(expand=2.0).eval()
    assert model.config["arch"] == "colormamba" and model.config["attn_reduction"] == 4  # default filled in
    rebuilt = build_model(json.loads(json.dumps(model.config))).eval()
    assert rebuilt.config == model.config
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(1, 1, 40, 24)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_every_bundled_config_builds():
    names = bundled_names("models")
    assert {"colormamba-lite", "colormamba-base", "colormamba-paper"} <= set(names)
    assert "colormamba" in list_models()
    for name in names:
        config = load_model_config(name)
        model = build_model(config)
        assert model.config == {**model.config, **config}
        count = n_params(model)
        if name == "colormamba-paper":
            assert 80e6 < count < 120e6, count
            continue
        if name == "colormamba-lite":  # a CPU model: 4.7 M since 2026-11-30, and the 2.96 M ImageNet trunk since 2026-12-05
            assert 0.3e6 < count - sum(p.numel() for p in model.pretrained_parameters()) < 6e6, count
        with torch.no_grad():
            assert model.eval()(torch.rand(1, 1, 48, 72)).shape == (1, 3, 48, 72)


def test_model_config_loads_from_a_yaml_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("arch: colormamba\nngf: 8\nnfg: 4\n")
    assert load_model_config(path) == {"arch": "colormamba", "ngf": 8, "nfg": 4}
    with pytest.raises(ConfigError, match="colormamba-lite"):
        load_model_config("colormamba-huge")


def test_the_luma_gate_starts_as_no_gate_and_moves_luma_to_the_nir_keeping_chroma():
    """At zero the gated model computes what the same weights without the gate compute; with a
    share of 1 the output's luma is the NIR's and its channels keep their differences (chroma)."""
    from nirstream.core.colorspace import LUMA

    torch.manual_seed(0)
    plain, gated = tiny().eval(), tiny(luma_gate=True).eval()
    missing, unexpected = gated.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["g_a.luma_gate.share.bias", "g_a.luma_gate.share.weight"]
    nir = 0.3 + 0.4 * torch.rand(1, 1, 24, 40)  # mid-range: no channel clips when its luma moves
    with torch.no_grad():
        before = plain(nir)
        assert torch.equal(gated(nir), before)
        gated.g_a.luma_gate.share.bias.fill_(1.0 / gated.g_a.luma_gate.GAIN)  # a share of 1
        after = gated(nir)
    weights = torch.tensor(LUMA).view(1, 3, 1, 1)
    moved = before + nir - (before * weights).sum(1, keepdim=True)
    unclipped = ((moved > 0) & (moved < 1)).all(1)
    assert unclipped.float().mean() > 0.9
    luma = (after * weights).sum(1)
    torch.testing.assert_close(luma[unclipped], nir[:, 0][unclipped], atol=1e-5, rtol=0)
    chroma = lambda x: (x - x.mean(1, keepdim=True)).permute(0, 2, 3, 1)[unclipped]  # noqa: E731
    torch.testing.assert_close(chroma(after), chroma(before), atol=1e-5, rtol=0)
    # a share that varies in space, on a size that needs padding: the share is upsampled and
    # cropped as the head's coefficients are, and the output stays an image
    torch.nn.init.normal_(gated.g_a.luma_gate.share.weight, std=0.5)
    odd = torch.rand(2, 1, 37, 53)
    with torch.no_grad():
        rgb, aux = gated(odd), gated.forward_with_aux(odd)["rgb"]
    assert rgb.shape == (2, 3, 37, 53) and 0 <= rgb.min() and rgb.max() <= 1
    torch.testing.assert_close(aux, rgb)
    assert not torch.allclose(rgb, plain(odd))


def test_a_name_cannot_be_registered_twice():
    from nirstream.core.models.interface import ColorizationModel

    with pytest.raises(ValueError, match="already registered"):
        register_model("colormamba")(type("Impostor", (ColorizationModel,), {"forward": lambda self, nir: nir}))
    with pytest.raises(TypeError, match="must subclass ColorizationModel"):
        register_model("plain")(type("Plain", (torch.nn.Module,), {}))
    assert type(tiny()) is ColorMamba  # the original registration still holds


@pytest.mark.parametrize("arch_config", [TINY_COLORMAMBA, {**TINY_COLORMAMBA, "encoder": "efficientnet-lite0"},
                                         {**TINY_COLORMAMBA, "luma_gate": True}, {"arch": "resnet34-lab"},
                                         {"arch": "pix2pix-lab", "ngf": 4, "depth": 3, "dropout_layers": 1}])
def test_every_registered_model_keeps_the_declared_contract(arch_config):
    """What the colorizer, trainer and exporters rely on (core/models/interface.py), for each arch."""
    from nirstream.core.models.interface import ColorizationModel, pad_with_margin

    model = build_model(dict(arch_config)).eval()
    assert isinstance(model, ColorizationModel) and model.config["arch"] == arch_config["arch"]
    for height, width in [(37, 53), (64, 64)]:
        _, offset = pad_with_margin(torch.empty(1, 1, height, width), model.pad_multiple)
        assert model.pad_offset(height, width) == offset and model.multiple % model.pad_multiple == 0
        nir = torch.rand(2, 1, height, width)
        with torch.no_grad():
            rgb, outputs = model(nir), model.forward_with_aux(nir)
        assert rgb.shape == (2, 3, height, width) and 0 <= rgb.min() and rgb.max() <= 1
        torch.testing.assert_close(outputs["rgb"], rgb)
