"""The selective-scan backends agree with the sequential oracle, in values and gradients."""

import pytest
import torch

from nirstream.core.errors import ConfigError
from nirstream.core.ops import mamba_ssm_available, resolve_backend, selective_scan
from nirstream.core.ops import scan_chunked as chunked_module
from nirstream.core.ops.scan_triton import triton_available


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the largest magnitude of the oracle."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def make_inputs(batch=2, dim=8, length=37, state=4, groups=2, device="cpu", grad=False):
    g = torch.Generator().manual_seed(1234)

    def rnd(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(device).requires_grad_(grad)

    return dict(
        u=rnd(batch, dim, length),
        delta=rnd(batch, dim, length, scale=0.5),
        A=(-torch.rand(dim, state, generator=g) * 4 - 0.5).to(device).requires_grad_(grad),
        B=rnd(batch, groups, state, length),
        C=rnd(batch, groups, state, length),
        D=rnd(dim),
        z=rnd(batch, dim, length),
        delta_bias=rnd(dim, scale=0.5),
    )


@pytest.mark.parametrize("length", [1, 16, 37, 1100])  # 1100 crosses sub-chunk and block edges
def test_chunked_matches_reference_outputs(length):
    inputs = make_inputs(length=length)
    ref = selective_scan(**inputs, delta_softplus=True, backend="reference")
    out = selective_scan(**inputs, delta_softplus=True, backend="chunked")
    assert out.shape == ref.shape == (2, 8, length)
    assert rel_err(out, ref) <= 1e-4


def test_ungrouped_b_and_c_and_plain_call():
    inputs = make_inputs(groups=1)
    inputs["B"], inputs["C"] = inputs["B"][:, 0], inputs["C"][:, 0]  # (b, n, l)
    for name in ("D", "z", "delta_bias"):
        inputs.pop(name)
    ref = selective_scan(**inputs, backend="reference")
    assert rel_err(selective_scan(**inputs, backend="chunked"), ref) <= 1e-4


def test_chunked_matches_reference_gradients():
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    grads = {}
    for backend in ("reference", "chunked"):
        inputs = make_inputs(length=1100, grad=True)  # crosses sub-chunk and block edges
        out = selective_scan(**inputs, delta_softplus=True, backend=backend)
        weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
        (out * weights).sum().backward()
        grads[backend] = {n: inputs[n].grad.clone() for n in names}
    for name in names:
        assert rel_err(grads["chunked"][name], grads["reference"][name]) <= 1e-4, name


def test_strong_decay_stays_finite_and_exact():
    inputs = make_inputs(length=80)
    inputs["delta"] = inputs["delta"].abs() * 40 + 5  # delta*A down to about -900 per step
    ref = selective_scan(**inputs, backend="reference")
    out = selective_scan(**inputs, backend="chunked")
    assert torch.isfinite(out).all()
    assert rel_err(out, ref) <= 1e-4


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_scan_runs_in_fp32_under_autocast(half):
    inputs = make_inputs(length=40)
    plain = selective_scan(**inputs, delta_softplus=True, backend="chunked")
    with torch.autocast("cpu", dtype=half):
        # Half-precision inputs, as a preceding autocast linear layer would produce them.
        halved = {k: v.to(half) if k in ("u", "delta", "z") else v for k, v in inputs.items()}
        out = selective_scan(**halved, delta_softplus=True, backend="chunked")
    assert out.dtype == torch.float32
    rounded = {k: v.to(half).float() if k in ("u", "delta", "z") else v for k, v in inputs.items()}
    expected = selective_scan(**rounded, delta_softplus=True, backend="chunked")
    assert torch.allclose(out, expected, atol=1e-5, rtol=1e-5)
    assert rel_err(out, plain) < 0.05  # only the bf16 rounding of the inputs differs


def test_default_backend_and_errors():
    assert resolve_backend("auto", torch.device("cpu")) == "chunked"
    with pytest.raises(ConfigError, match="unknown scan backend 'fast'"):
        resolve_backend("fast", torch.device("cpu"))
    if not mamba_ssm_available():
        with pytest.raises(ConfigError, match="mamba-ssm"):
            resolve_backend("mamba_ssm", torch.device("cpu"))
    inputs = make_inputs(length=20)
    ref = selective_scan(**inputs, backend="reference")
    assert rel_err(selective_scan(**inputs), ref) <= 1e-4  # the default: auto -> chunked
    with pytest.raises(ConfigError, match="unknown scan backend 'fast'"):
        selective_scan(**inputs, backend="fast")


def test_chunk_and_block_sizes_do_not_change_results(monkeypatch):
    inputs = make_inputs(length=300)
    baseline = selective_scan(**inputs, delta_softplus=True, backend="chunked")
    monkeypatch.setattr(chunked_module, "CHUNK", 8)
    monkeypatch.setattr(chunked_module, "BLOCK", 64)
    assert rel_err(selective_scan(**inputs, delta_softplus=True, backend="chunked"), baseline) <= 1e-5


def _cuda_kernel_matches_reference(backend):
    results = {}
    for name in ("reference", backend):
        inputs = make_inputs(length=500, dim=64, state=16, groups=4, device="cuda", grad=True)
        out = selective_scan(**inputs, delta_softplus=True, backend=name)
        out.square().sum().backward()
        names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")
        results[name] = [out.detach()] + [inputs[n].grad for n in names]
    for got, want in zip(results[backend], results["reference"]):
        assert rel_err(got, want) <= 1e-4


@pytest.mark.skipif(not (torch.cuda.is_available() and mamba_ssm_available()), reason="needs CUDA and mamba-ssm")
def test_mamba_ssm_kernel_matches_reference_on_cuda():
    _cuda_kernel_matches_reference("mamba_ssm")


@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and triton")
def test_triton_kernel_matches_reference_on_cuda():
    assert resolve_backend("auto", torch.device("cuda")) in ("triton", "mamba_ssm")
    _cuda_kernel_matches_reference("triton")


def test_custom_op_backend_matches_chunked_and_is_one_node_when_exported():
    inputs = make_inputs(length=50)
    expected = selective_scan(**inputs, delta_softplus=True, backend="chunked")
    assert torch.equal(selective_scan(**inputs, delta_softplus=True, backend="custom_op"), expected)

    class Scan(torch.nn.Module):
        def forward(self, u, delta, B, C):
            return selective_scan(u, delta, inputs["A"], B, C, inputs["D"], delta_softplus=True, backend="custom_op")

    args = tuple(inputs[k] for k in ("u", "delta", "B", "C"))
    program = torch.export.export(Scan(), args)
    targets = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert "nirstream.selective_scan.default" in targets
    assert not any("cumsum" in t or "exp" in t for t in targets)  # the chunked loops stayed inside the op
    assert torch.allclose(program.module()(*args), selective_scan(*args[:2], inputs["A"], *args[2:], inputs["D"],
                                                                   delta_softplus=True), atol=1e-6)


def test_scan_runs_on_meta_tensors_for_shape_inference():
    inputs = {k: v.to("meta") for k, v in make_inputs(length=33).items()}
    assert selective_scan(**inputs, delta_softplus=True, backend="chunked").shape == (2, 8, 33)


@pytest.mark.parametrize("backend", ["reference", "chunked", "custom_op"])
def test_epilogue_by_hand(backend):
    """delta_bias, softplus, the D skip and the z gate, on numbers worked out by hand.

    Every backend shares this code, so comparing backends cannot see a bug in it. One channel,
    one state, two tokens: Δ_t = softplus(δ_t + bias), h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t,
    y_t = (C_t h_t + D u_t) · silu(z_t).
    """
    import math

    u, delta, z = [2.0, -1.0], [0.3, -0.5], [1.0, -2.0]
    A, B, C, D, bias = -0.7, [0.5, 1.5], [2.0, -1.0], 0.25, 0.2
    softplus = [math.log1p(math.exp(x + bias)) for x in delta]
    silu = [x / (1 + math.exp(-x)) for x in z]
    h0 = softplus[0] * B[0] * u[0]
    h1 = math.exp(softplus[1] * A) * h0 + softplus[1] * B[1] * u[1]
    expected = [(C[0] * h0 + D * u[0]) * silu[0], (C[1] * h1 + D * u[1]) * silu[1]]

    def row(values):
        return torch.tensor(values, dtype=torch.float64).view(1, 1, -1)

    out = selective_scan(
        row(u), row(delta), torch.tensor([[A]], dtype=torch.float64), row(B), row(C),
        D=torch.tensor([D], dtype=torch.float64), z=row(z),
        delta_bias=torch.tensor([bias], dtype=torch.float64), delta_softplus=True, backend=backend,
    )
    torch.testing.assert_close(out.flatten().double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=1e-9)


def test_the_scan_backend_is_chosen_per_model_layer():
    """Two models, two kernels, at once: the choice is an attribute of each SS2D layer, not of the thread."""
    from nirstream.core.models import build_model, set_scan_backend, use_scan_backend
    from nirstream.core.models.ss2d import SS2D

    from conftest import TINY_COLORMAMBA

    first, second = build_model(dict(TINY_COLORMAMBA)), build_model(dict(TINY_COLORMAMBA))
    set_scan_backend(first, "reference")
    layers = lambda model: {m.scan_backend for m in model.modules() if isinstance(m, SS2D)}  # noqa: E731
    assert layers(first) == {"reference"} and layers(second) == {"auto"}
    with use_scan_backend(first, "custom_op"):
        assert layers(first) == {"custom_op"}
    assert layers(first) == {"reference"}  # restored
    with pytest.raises(ConfigError, match="unknown scan backend"):
        set_scan_backend(first, "fast")
