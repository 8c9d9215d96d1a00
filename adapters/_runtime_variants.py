"""The runtime axes (`runtime_axes.py`) applied to a loaded torch model: resident compiled variants.

A variant is the model's denoiser — the eager one, or a copy quantised to a `precision`
(``precision.py``) — run under one attention backend (entered around its forward: `_WithAttention`)
and, unless eager, wrapped by ``torch.compile`` in one mode. A `cache` is a step cache
(``step_cache.py``) installed on that denoiser while its runtime is in use and emptied after each
generation. The knobs act on the denoiser alone: it runs at every step and holds almost all the
attention, while the text encoders, decoder and vocoder keep torch's choice of kernel (a VAE's
single-head attention has no flash kernel, for one). A variant shares the weights of the denoiser it
wraps (no second copy; a quantised copy is the one copy, made once per precision), is built on first
use and kept as long as the adapter stays resident — once per (worker, model, runtime). `use` puts the
asked-for variant in the denoiser's place (the pipeline reaches the wrapped module's attributes through
``OptimizedModule``, the way diffusers documents compiling a UNet); it stays there until another
runtime is asked for, so the windows of a trial swap nothing.

Shapes are static (``dynamic=False``): CUDA graphs are captured per shape anyway and a sweep has few
(batch size × duration × guidance × prompt length), each compiled on its first call. The trial makes
that call outside its windows (its setup, metered apart) and refuses a window in which a graph was
compiled (`runtime_axes.compiled_graphs`).

No silent fallback to eager: ``fullgraph=True`` makes a graph break an error, hitting dynamo's
recompile limit is an error (dynamo would otherwise run the frame eagerly), and a CUDA-graph capture
that inductor skips under ``reduce-overhead``/``max-autotune`` (it only logs it) is an error, for that
denoiser class from then on; off CUDA those modes are infeasible before anything is compiled. These,
any other compile failure, an attention backend with no kernel for a call, a precision the device or a
layer cannot run (``precision.py``) and a step cache under ``torch.compile`` (its features would live
outside the graph) become `InfeasibleError`: the knob cannot run this configuration, which is a
result, not a crash.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import torch

from t2a_ray.adapters import precision as quantise
from t2a_ray.adapters._modules import named_modules_of
from t2a_ray.adapters.runtime_axes import CUDA_GRAPH_MODES, EAGER, cache_interval, runtime_of
from t2a_ray.adapters.step_cache import StepCache
from t2a_ray.errors import InfeasibleError, first_line

# Compiled graphs one function may hold (dynamo's default is 8): a worker can hold several models that
# share a denoiser class, each with its shapes and runtimes. Beyond it, an error (never eager).
RECOMPILE_LIMIT = 64
# Log calls in a compiled denoiser's forward, traced as no-ops rather than graph breaks (which `fullgraph`
# makes errors): AudioLDM 2's UNet logs at info level whenever its latent is not a multiple of its
# upsampling factor (most durations). A message changes nothing that is computed.
IGNORED_LOG_CALLS = {logging.Logger.debug, logging.Logger.info}


# (denoiser class, mode, attention, precision) whose CUDA graph capture inductor skipped in this process.
# Inductor logs a skip once, when it compiles; dynamo shares the compiled graph with every later instance
# of the class (a reloaded model, tango and tango2), which would then run without graphs and without a word.
_SKIPPED_CUDA_GRAPHS: set[tuple[str, str, str, str]] = set()

# What SDPA raises when the chosen backend cannot run a call (on the GPU, and on the CPU for `efficient`)
_NO_SDPA_KERNEL = ("No available kernel", "No viable backend")


def _backends() -> dict[str, list[Any]]:
    from torch.nn.attention import SDPBackend

    return {
        "flash": [SDPBackend.FLASH_ATTENTION],
        "efficient": [SDPBackend.EFFICIENT_ATTENTION],
        "math": [SDPBackend.MATH],
    }


def _cudagraph_skips() -> int:
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["cudagraph_skips"])


class Variants:
    """The runtimes of one loaded model whose eager denoiser is `denoiser`."""

    def __init__(self, model: Any, denoiser: torch.nn.Module, device: torch.device):
        self.device = device
        self.eager = denoiser
        self.slot = _slot(model, denoiser)
        self.variants: dict[tuple[str, str, str], torch.nn.Module] = {}
        self.quantised: dict[str, torch.nn.Module] = {}  # precision → the quantised copy of `eager`
        self.cache: StepCache | None = None  # on the active runtime's denoiser, where it has a cache
        self.active = dict(EAGER)

    def base(self, precision: str) -> torch.nn.Module:
        """The denoiser in `precision`: the eager one, or its quantised copy (made once and kept)."""
        if precision == "none":
            return self.eager
        if precision not in self.quantised:
            self.quantised[precision] = quantise.quantised(self.eager, precision)
        return self.quantised[precision]

    def module(self, runtime: Mapping[str, str]) -> torch.nn.Module:
        """The denoiser for `runtime`, made once and kept (compiled lazily: on its first call)."""
        mode, attention, precision = runtime["compile"], runtime["attention"], runtime["precision"]
        base = self.base(precision)
        if (mode, attention) == ("none", "default"):
            return base
        if (mode, attention, precision) not in self.variants:
            from torch import _inductor

            variant = _WithAttention(base, None if attention == "default" else _backends()[attention])
            if mode != "none":
                variant = torch.compile(
                    variant, fullgraph=True, dynamic=False, options=_inductor.list_mode_options(mode)
                )
            self.variants[mode, attention, precision] = variant
        return self.variants[mode, attention, precision]

    @contextlib.contextmanager
    def use(self, params: Mapping[str, Any]) -> Iterator[None]:
        """Run the body (one generation) under the runtime that `params` ask for."""
        runtime = runtime_of(params)
        mode, attention = runtime["compile"], runtime["attention"]
        graphs_key = (type(self.eager).__qualname__, mode, attention, runtime["precision"])
        if mode in CUDA_GRAPH_MODES and self.device.type != "cuda":
            raise InfeasibleError(f"compile={mode}: no CUDA graphs on the {self.device.type}")
        if runtime["cache"] != "none" and mode != "none":
            raise InfeasibleError(
                f"cache={runtime['cache']} with compile={mode}: the features a step cache keeps between "
                "calls live outside the compiled graph (and CUDA graphs reuse their output memory)"
            )
        quantise.check_device(runtime["precision"], self.device)
        if graphs_key in _SKIPPED_CUDA_GRAPHS:  # its graphs may be reused, and the skip is not logged again
            raise InfeasibleError(f"compile={mode}: inductor skipped CUDA graph capture for this denoiser")
        if runtime != self.active:
            if self.cache is not None:  # off its denoiser before that is copied to be quantised
                self.cache.remove()
                self.cache = None
            parent, name = self.slot
            setattr(parent, name, self.module(runtime))
            self.active = runtime
        interval = cache_interval(runtime["cache"])
        if interval is not None and self.cache is None:
            self.cache = StepCache(self.base(runtime["precision"]), interval)
        skips = _cudagraph_skips() if mode in CUDA_GRAPH_MODES else 0
        try:
            with contextlib.ExitStack() as stack:
                if self.cache is not None:  # the features are this generation's: not kept beyond it
                    stack.callback(self.cache.reset)
                if mode != "none":
                    stack.enter_context(
                        torch._dynamo.config.patch(
                            recompile_limit=RECOMPILE_LIMIT,
                            fail_on_recompile_limit_hit=True,
                            ignore_logging_functions=IGNORED_LOG_CALLS,
                        )
                    )
                yield
        except torch._dynamo.exc.TorchDynamoException as e:
            raise InfeasibleError(f"compile={mode} failed: {first_line(e)}") from e
        except RuntimeError as e:
            if attention != "default" and any(m in str(e) for m in _NO_SDPA_KERNEL):
                raise InfeasibleError(
                    f"attention={attention} has no kernel for an attention call of the denoiser: {first_line(e)}"
                ) from e
            raise
        if mode in CUDA_GRAPH_MODES and _cudagraph_skips() > skips:
            _SKIPPED_CUDA_GRAPHS.add(graphs_key)
            raise InfeasibleError(
                f"compile={mode}: inductor skipped CUDA graph capture (TORCH_LOGS=cudagraphs names the "
                "cause), so the denoiser would run without the graphs this mode is for"
            )


class _WithAttention(torch.nn.Module):
    """The denoiser with its SDPA backend chosen around its forward (inside the compiled region when
    compiled).

    Dynamo does not guard on the SDPA backend in force when a graph is called: a graph traced under one
    backend would be reused under another. Entering ``sdpa_kernel`` inside the traced forward bakes the
    backend into the graph, and its value (an attribute read in forward) into the guards. Attributes the
    pipeline reads (``config``, ``dtype``) are the wrapped module's.
    """

    def __init__(self, inner: torch.nn.Module, backends: list[Any] | None):
        super().__init__()
        self.inner = inner
        self.backends = backends

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.backends is None:
            return self.inner(*args, **kwargs)
        from torch.nn.attention import sdpa_kernel

        with sdpa_kernel(self.backends):
            return self.inner(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.inner, name)


def _slot(model: Any, module: torch.nn.Module) -> tuple[Any, str]:
    """(parent, attribute) holding `module`: a top-level part of the model or a child of one."""
    for name, part in named_modules_of(model).items():
        if part is module:
            return model, name
        for child_name, child in part.named_children():
            if child is module:
                return part, child_name
    raise RuntimeError(f"the denoiser {type(module).__name__} is not a part of the model, nor a child of one")
