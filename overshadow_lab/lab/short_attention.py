"""Causal attention with rotary embeddings for the lab's short sequences, as a small C kernel.

The lab trains on statements of a handful of tokens: a batch of 64 statements of 5 input tokens
with 4 heads is 256 attention problems of 5 x 5 per layer, a few hundred thousand
multiply-adds in all. torch's CPU attention (``scaled_dot_product_attention``) is made for long
sequences: it tiles, allocates and dispatches per block, and on these shapes it cost about
6 microseconds per (sequence, head), some 15 % of a training step, while the arithmetic takes
a fraction of that. Written out with batched products, softmax and broadcasting (tried, see
``benchmarks/RESULTS.md``), it costs as much, because each of its dozen operations is a pass
over memory with a fixed cost of its own. No library we know of ships attention for sequences
this short on a CPU, so the forward and the backward are written here in plain C
(``short_attention.c``, about 170 lines): one (sequence, head) at a time, in arrays that stay
in the first-level cache, with the rotary embedding of the queries and keys folded in, so that
the rotation, the split of the fused projection into queries, keys and values and the
transposes around the attention call disappear from the step too.

The kernel is compiled on first use with the system's C compiler (``cc``; about a second, no
torch headers) into the lab's cache folder (:func:`overshadow_lab.paths.cache_dir`), keyed by
the source, the flags and the CPU, and loaded with :mod:`ctypes`. Before it is used, it is
checked once against ``scaled_dot_product_attention`` on a random problem. Where there is no
compiler, the build fails or the check disagrees, :func:`library` warns once and returns None,
and :mod:`overshadow_lab.lab.neox` keeps torch's attention: the same function up to float
rounding (``tests/lab/test_short_attention.py``). ``OVERSHADOW_KERNELS=0`` in the environment
turns the kernel off. It runs on one thread (each lane of the stacked trainer is one thread;
a single run's attention is a small part of its step either way) and serves float32 tensors on
the CPU, sequences of up to :data:`MAX_LENGTH` tokens and heads of up to :data:`MAX_HEAD`
dimensions; :func:`usable` says whether a call qualifies.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import threading
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

SOURCE = Path(__file__).with_name("short_attention.c")
#: ``-march=native``: the library is built on the machine that runs it (the cache key holds
#: the CPU); ``-fopenmp-simd``: the ``omp simd`` loops vectorise, no OpenMP runtime is linked.
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-std=c99", "-shared", "-fPIC")
#: The flags tried when the compiler does not know ``-march=native`` (clang on arm64).
PLAIN_FLAGS = ("-O3", "-std=c99", "-shared", "-fPIC")
ENV = "OVERSHADOW_KERNELS"
MAX_LENGTH = 32  # as MAX_T and MAX_D in short_attention.c (checked when loading)
MAX_HEAD = 128

_state: dict = {"tried": False, "lib": None}
_lock = threading.Lock()


def _cpu() -> str:
    """What identifies this CPU's instruction set, for the cache key."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    lines = [x for x in text.splitlines() if x.startswith(("flags", "model name", "Features"))]
    return "\n".join(dict.fromkeys(lines))  # each distinct line once (one per core otherwise)


def _build(target: Path, compiler: str) -> None:
    """Compile the source into ``target``: written under a temporary name, then renamed."""
    from filelock import FileLock

    with FileLock(str(target) + ".lock"):  # sweep workers may all ask at once
        if target.exists():
            return
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        errors = []
        try:
            for flags in (FLAGS, PLAIN_FLAGS):
                done = subprocess.run(
                    [compiler, *flags, "-o", str(tmp), str(SOURCE), "-lm"],
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if done.returncode == 0:
                    os.replace(tmp, target)
                    return
                errors.append(done.stderr.strip().splitlines()[-1:] or ["(no message)"])
        finally:
            tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{compiler} failed: {errors[-1][0]}")


def _load() -> ctypes.CDLL:
    from overshadow_lab.paths import cache_dir

    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler found (cc or gcc on PATH, or $CC)")
    key = hashlib.sha256(
        b"\0".join(
            [SOURCE.read_bytes(), " ".join(FLAGS).encode(), compiler.encode(), _cpu().encode()]
        )
    ).hexdigest()[:16]
    target = cache_dir("kernels") / f"short_attention-{key}.so"
    if not target.exists():
        _build(target, compiler)
    lib = ctypes.CDLL(str(target))
    ptr, n, i, f = ctypes.c_void_p, ctypes.c_long, ctypes.c_int, ctypes.c_float
    lib.short_attention_forward.argtypes = [ptr] * 5 + [n, i, i, i, i, f]
    lib.short_attention_forward.restype = None
    lib.short_attention_backward.argtypes = [ptr] * 6 + [n, i, i, i, i, f]
    lib.short_attention_backward.restype = None
    if (lib.short_attention_max_length(), lib.short_attention_max_head()) != (
        MAX_LENGTH,
        MAX_HEAD,
    ):
        raise RuntimeError("the compiled limits differ from MAX_LENGTH and MAX_HEAD")
    return lib


def enabled() -> bool:
    """Whether ``$OVERSHADOW_KERNELS`` allows the kernel (it does unless set to 0/false/no/off)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def library() -> ctypes.CDLL | None:
    """The compiled kernel, built and checked on first use; None where it cannot be used (the
    reason is warned once)."""
    if _state["tried"]:
        return _state["lib"]
    with _lock:
        if not _state["tried"]:
            lib = None
            if enabled():
                try:
                    lib = _load()
                    _state["lib"] = lib
                    _self_check()
                except Exception as err:  # noqa: BLE001 - any failure means: use torch's
                    lib = None
                    warnings.warn(
                        f"overshadow_lab: the short-attention C kernel is not used ({err}); "
                        f"training uses torch's attention instead (slower on a CPU, same "
                        f"results up to float rounding)",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            _state["lib"] = lib
            _state["tried"] = True
    return _state["lib"]


def usable(qkv: torch.Tensor, size: int) -> bool:
    """Whether :func:`attention` can take ``qkv`` (``[N, T, heads * 3 * size]``): float32 on
    the CPU, ``T <= MAX_LENGTH``, ``size <= MAX_HEAD``, and the kernel built."""
    return (
        qkv.device.type == "cpu"
        and qkv.dtype == torch.float32
        and qkv.shape[1] <= MAX_LENGTH
        and size <= MAX_HEAD
        and library() is not None
    )


def _pointer(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


class ShortCausalAttention(torch.autograd.Function):
    """``attention(rotate(q), rotate(k), v)`` from the fused projection ``qkv``, with the
    backward written out (see the module doc); ``cos`` and ``sin`` are ``[T, rot]``."""

    @staticmethod
    def forward(ctx, qkv, cos, sin, heads: int, size: int, scale: float):
        lib = _state["lib"]
        qkv = qkv.contiguous()
        n, length = qkv.shape[0], qkv.shape[1]
        out = qkv.new_empty(n, length, heads * size)
        probs = qkv.new_empty(n, heads, length, length)
        rot = cos.shape[1]
        lib.short_attention_forward(
            _pointer(qkv), _pointer(cos), _pointer(sin), _pointer(out), _pointer(probs),
            n, length, heads, size, rot, scale,
        )  # fmt: skip
        ctx.save_for_backward(qkv, cos, sin, probs)
        ctx.shape = (heads, size, scale)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        qkv, cos, sin, probs = ctx.saved_tensors
        heads, size, scale = ctx.shape
        grad_out = grad_out.contiguous()
        grad = torch.empty_like(qkv)
        _state["lib"].short_attention_backward(
            _pointer(qkv), _pointer(cos), _pointer(sin), _pointer(probs), _pointer(grad_out),
            _pointer(grad), qkv.shape[0], qkv.shape[1], heads, size, cos.shape[1], scale,
        )  # fmt: skip
        return grad, None, None, None, None, None


def attention(qkv, cos, sin, heads: int, size: int, scale: float) -> torch.Tensor:
    """Causal attention of ``qkv`` ``[N, T, heads * 3 * size]`` (GPT-NeoX's fused layout: each
    head's query, key and value side by side), the first ``rot`` dimensions of queries and keys
    rotated by ``cos`` and ``sin`` (``[T, rot]``, ``rotate_half`` convention): ``[N, T, heads *
    size]``. Call it where :func:`usable` is true."""
    if cos.shape[1] % 2 or cos.shape[1] > size:
        raise ValueError(f"rotary dimensions must be even and at most {size}, got {cos.shape[1]}")
    return ShortCausalAttention.apply(
        qkv, cos.contiguous(), sin.contiguous(), int(heads), int(size), float(scale)
    )


def reference(qkv, cos, sin, heads: int, size: int, scale: float) -> torch.Tensor:
    """The same with torch's operations and ``scaled_dot_product_attention`` (what the kernel
    is checked against)."""
    n, length = qkv.shape[0], qkv.shape[1]
    rot = cos.shape[1]
    q, k, v = qkv.view(n, length, heads, 3 * size).split(size, dim=-1)

    def rotate(x):
        half = rot // 2
        x_rot, x_pass = x[..., :rot], x[..., rot:]
        turned = torch.cat([-x_rot[..., half:], x_rot[..., :half]], dim=-1)
        c, s = cos[None, :, None], sin[None, :, None]
        return torch.cat([x_rot * c + turned * s, x_pass], dim=-1)

    q, k, v = (t.transpose(1, 2) for t in (rotate(q), rotate(k), v))
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    return o.transpose(1, 2).reshape(n, length, heads * size)


def _self_check() -> None:
    """The kernel against :func:`reference` on one random problem, values and gradients."""
    # the first call may come from inside torch.no_grad() or torch.inference_mode()
    with torch.inference_mode(False), torch.enable_grad():
        gen = torch.Generator().manual_seed(0)
        heads, size, rot, length = 3, 8, 4, 6
        qkv = torch.randn(5, length, heads * 3 * size, generator=gen)
        angles = torch.rand(length, rot // 2, generator=gen).repeat(1, 2)
        cos, sin = angles.cos(), angles.sin()
        weights = torch.randn(5, length, heads * size, generator=gen)
        results = []
        for fn in (attention, reference):
            x = qkv.clone().requires_grad_()
            out = fn(x, cos, sin, heads, size, 0.3)
            (out * weights).sum().backward()
            results.append((out.detach(), x.grad))
    for ours, theirs in zip(*results, strict=True):
        if not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
            raise RuntimeError("the compiled kernel disagrees with torch's attention")
