"""The short-attention C kernel computes torch's attention, and the lab falls back without it."""

import shutil
import warnings

import pytest
import torch

from overshadow_lab.lab import neox
from overshadow_lab.lab import short_attention as sa
from overshadow_lab.lab.models import make_model

needs_kernel = pytest.mark.skipif(
    sa.library() is None, reason="no C compiler here: the kernel cannot be built"
)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A session that has not tried to build the kernel yet, with an empty cache."""
    monkeypatch.setattr(sa, "_state", {"tried": False, "lib": None})
    monkeypatch.setenv("OVERSHADOW_CACHE", str(tmp_path))
    return tmp_path


def _problem(n, length, heads, size, rot, seed=0):
    gen = torch.Generator().manual_seed(seed)
    qkv = torch.randn(n, length, heads * 3 * size, generator=gen)
    angles = 3 * torch.rand(length, rot // 2, generator=gen).repeat(1, 2)
    weights = torch.randn(n, length, heads * size, generator=gen)
    return qkv, angles.cos(), angles.sin(), weights


def _run(fn, qkv, cos, sin, weights, heads, size, scale):
    x = qkv.clone().requires_grad_()
    out = fn(x, cos, sin, heads, size, scale)
    (out * weights).sum().backward()
    return out.detach(), x.grad


@needs_kernel
@pytest.mark.parametrize(
    "n, length, heads, size, rot",
    [(3, 1, 2, 8, 4), (4, 5, 4, 16, 4), (2, 9, 2, 16, 16), (2, sa.MAX_LENGTH, 1, 32, 2)],
    ids=["one-token", "lab-tiny", "full-rotary", "longest"],
)
def test_kernel_matches_torch_attention_values_and_gradients(n, length, heads, size, rot):
    qkv, cos, sin, weights = _problem(n, length, heads, size, rot)
    assert sa.usable(qkv, size)
    ours = _run(sa.attention, qkv, cos, sin, weights, heads, size, size**-0.5)
    theirs = _run(sa.reference, qkv, cos, sin, weights, heads, size, size**-0.5)
    for a, b, what in zip(ours, theirs, ("output", "gradient"), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=what)


@needs_kernel
def test_kernel_is_deterministic_and_batch_independent():
    qkv, cos, sin, weights = _problem(6, 5, 4, 16, 4, seed=1)
    whole = _run(sa.attention, qkv, cos, sin, weights, 4, 16, 0.25)
    again = _run(sa.attention, qkv, cos, sin, weights, 4, 16, 0.25)
    part = _run(sa.attention, qkv[:2], cos, sin, weights[:2], 4, 16, 0.25)
    for a, b, c in zip(whole, again, part, strict=True):
        assert torch.equal(a, b)
        assert torch.equal(a[:2], c)  # each sequence on its own: the same bits in any batch


@needs_kernel
def test_usable_only_for_what_the_kernel_serves():
    qkv = torch.zeros(2, 5, 4 * 3 * 16)
    assert sa.usable(qkv, 16)
    assert not sa.usable(qkv.double(), 16)
    assert not sa.usable(torch.zeros(2, sa.MAX_LENGTH + 1, 4 * 3 * 16), 16)
    assert not sa.usable(torch.zeros(1, 5, 3 * (sa.MAX_HEAD + 2)), sa.MAX_HEAD + 2)
    with pytest.raises(ValueError, match="rotary dimensions must be even"):
        sa.attention(qkv, torch.ones(5, 3), torch.zeros(5, 3), 4, 16, 0.25)


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "torch"])
def test_lean_forward_matches_transformers_with_and_without_the_kernel(kernel, monkeypatch):
    if kernel and sa.library() is None:
        pytest.skip("no C compiler here: the kernel cannot be built")
    if not kernel:
        monkeypatch.setattr(sa, "_state", {"tried": True, "lib": None})
    model = make_model("tiny", vocab_size=50, seed=3).train()
    ids = torch.randint(0, 50, (4, 6), generator=torch.Generator().manual_seed(5))
    weights = torch.randn(
        4, 6, model.config.hidden_size, generator=torch.Generator().manual_seed(6)
    )
    ours = neox.hidden_states(model, ids)
    (ours * weights).sum().backward()
    mine = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    theirs = model.base_model(input_ids=ids, use_cache=False).last_hidden_state
    (theirs * weights).sum().backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    for name, grad in mine.items():
        ref = dict(model.named_parameters())[name].grad
        scale = max(1.0, float(ref.abs().max()))  # embeddings' gradients reach hundreds
        torch.testing.assert_close(grad, ref, rtol=1e-4, atol=1e-6 * scale, msg=name)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler here")
def test_builds_into_the_cache_on_first_use(fresh):
    lib = sa.library()
    assert lib is not None
    built = list((fresh / "kernels").glob("short_attention-*.so"))
    assert len(built) == 1 and not list((fresh / "kernels").glob(".*.tmp"))


def test_turned_off_by_the_environment(fresh, monkeypatch):
    monkeypatch.setenv(sa.ENV, "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # turned off on purpose: nothing to warn about
        assert sa.library() is None
    assert not sa.usable(torch.zeros(1, 5, 48), 16)
    assert not (fresh / "kernels").exists() or not list((fresh / "kernels").iterdir())


def test_a_failed_build_warns_once_and_leaves_nothing(fresh, monkeypatch):
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    with pytest.warns(RuntimeWarning, match="C kernel is not used .*false failed"):
        assert sa.library() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert sa.library() is None  # decided once per process
    assert not [p for p in (fresh / "kernels").iterdir() if not p.name.endswith(".lock")]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler here")
def test_a_kernel_that_disagrees_with_torch_is_not_used(fresh, monkeypatch):
    def wrong(qkv, cos, sin, heads, size, scale):
        return torch.zeros(qkv.shape[0], qkv.shape[1], heads * size) + qkv.sum() * 0

    monkeypatch.setattr(sa, "reference", wrong)
    with pytest.warns(RuntimeWarning, match="disagrees with torch's attention"):
        assert sa.library() is None


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler here")
@pytest.mark.parametrize("mode", ["no_grad", "inference_mode"])
def test_first_use_inside_a_no_gradient_block_still_checks_the_kernel(fresh, mode):
    qkv, cos, sin, _ = _problem(2, 5, 4, 16, 4)
    with getattr(torch, mode)():
        assert sa.usable(qkv, 16)  # built and checked here, with gradients, all the same
        out = sa.attention(qkv, cos, sin, 4, 16, 0.25)
    torch.testing.assert_close(out, sa.reference(qkv, cos, sin, 4, 16, 0.25))
