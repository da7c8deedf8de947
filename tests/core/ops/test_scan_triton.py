"""The Triton scan kernels agree with the fp64 sequential oracle, in values and all gradients."""

import importlib

import pytest
import torch
import torch.nn.functional as F

# Without a GPU the kernels run in Triton's CPU interpreter: conftest.py sets TRITON_INTERPRET=1
# before anything imports triton.

pytest.importorskip("triton")

from nirstream.core.ops.scan_reference import scan_reference  # noqa: E402
from nirstream.core.ops.scan_triton import scan_triton, triton_available  # noqa: E402

# The module itself, for monkeypatching its sizes (the package may export a function of its name).
scan_triton_module = importlib.import_module("nirstream.core.ops.scan_triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CHUNK = scan_triton_module.CHUNK
NAMES = ("u", "delta", "A", "B", "C")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest magnitude of the oracle."""
    return ((a.double() - b.double()).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def make_inputs(batch=2, dim=4, length=37, state=16, groups=2, seed=0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return dict(
        u=torch.randn(batch, dim, length, generator=g),
        delta=F.softplus(torch.randn(batch, dim, length, generator=g)) * 0.5,
        A=-torch.exp(torch.randn(dim, state, generator=g)),
        B=torch.randn(batch, groups, state, length, generator=g),
        C=torch.randn(batch, groups, state, length, generator=g),
    )


def run(
    scan, inputs: dict[str, torch.Tensor], dtype: torch.dtype, weights: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Output and gradients of ``sum(weights * scan(...))``, computed in ``dtype`` on DEVICE."""
    leaves = {k: v.to(DEVICE, dtype, copy=True).requires_grad_() for k, v in inputs.items()}
    y = scan(*(leaves[k] for k in NAMES))
    (y * weights.to(DEVICE, dtype)).sum().backward()
    return y.detach().cpu(), {k: leaves[k].grad.cpu() for k in NAMES}


def check_against_reference(shape: dict[str, int]) -> None:
    inputs = make_inputs(**shape)
    weights = torch.randn(2, shape["dim"], shape["length"])  # a random upstream gradient
    y, grads = run(scan_triton, inputs, torch.float32, weights)
    y_ref, grads_ref = run(scan_reference, inputs, torch.float64, weights)
    assert y.dtype == torch.float32 and y.shape == y_ref.shape
    assert rel_err(y, y_ref) <= 1e-4
    for name in NAMES:
        assert grads[name].shape == inputs[name].shape, name
        assert rel_err(grads[name], grads_ref[name]) <= 1e-4, name


def shape_id(shape: dict[str, int]) -> str:
    return "-".join(f"{k}{v}" for k, v in shape.items())


# The interpreter takes milliseconds per token and program: lengths and widths stay small.
@pytest.mark.parametrize(
    "shape",
    [
        dict(length=1, dim=2, groups=1, state=16),
        dict(length=20, dim=4, groups=2, state=16),  # less than one chunk, two groups
        dict(length=2 * CHUNK + 22, dim=2, groups=1, state=3),  # three chunks; n = 3 is padded to 4
    ],
    ids=shape_id,
)
def test_matches_fp64_reference(shape):
    check_against_reference(shape)


@pytest.mark.parametrize(
    "shape",
    [
        dict(length=16, dim=2, groups=1, state=1),  # exactly two chunks, n = 1
        dict(length=17, dim=4, groups=2, state=16),  # a one-token last chunk
        dict(length=29, dim=6, groups=3, state=3),  # four chunks, the last partial
    ],
    ids=shape_id,
)
def test_many_short_chunks(shape, monkeypatch):
    # The chunk size is read at each call: short chunks exercise the checkpoints at small lengths.
    monkeypatch.setattr(scan_triton_module, "CHUNK", 8)
    check_against_reference(shape)


def test_channel_blocks_split_a_group(monkeypatch):
    # A tile of 16 elements holds one channel of n = 16: dB and dC add up four block partials.
    monkeypatch.setattr(scan_triton_module, "TILE", 16)
    monkeypatch.setattr(scan_triton_module, "CHUNK", 8)
    check_against_reference(dict(length=11, dim=8, groups=2, state=16))


def test_non_contiguous_inputs_and_upstream_gradient():
    inputs = make_inputs(length=20, state=3)
    results = []
    for strided in (False, True):
        leaves = {k: v.to(DEVICE, copy=True).requires_grad_() for k, v in inputs.items()}
        args = leaves
        if strided:  # same values, other memory layouts: transposed copies viewed back, a slice
            args = dict(
                u=leaves["u"].transpose(1, 2).contiguous().transpose(1, 2),
                delta=torch.stack([leaves["delta"], leaves["delta"]], dim=-1)[..., 0],
                A=leaves["A"].t().contiguous().t(),
                B=leaves["B"].transpose(2, 3).contiguous().transpose(2, 3),
                C=leaves["C"].transpose(0, 1).contiguous().transpose(0, 1),
            )
            assert not any(v.is_contiguous() for v in args.values())
        y = scan_triton(*(args[k] for k in NAMES))
        y.sum().backward()  # the upstream gradient is a stride-0 expanded tensor
        results.append([y.detach()] + [leaves[k].grad for k in NAMES])
    for got, want in zip(*results):
        assert torch.equal(got, want)


def test_rejects_non_fp32():
    inputs = {k: v.double().to(DEVICE) for k, v in make_inputs(length=5).items()}
    with pytest.raises(TypeError, match="fp32"):
        scan_triton(*(inputs[k] for k in NAMES))


def test_triton_available():
    assert triton_available()
