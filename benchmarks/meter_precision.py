"""How precise is t2a-ray's meter, next to naive endpoint reads, on the H100?

One run does everything and writes under --out (default $OUT):

1. Characterise the NVML counter and power sensors: cost of each read, the counter's update period and
   its regularity, and — from a recording of known busy/idle steps — how late the counter and the power
   readings report the work (fitted lag). The recording becomes the replay fixture
   (`nvml_trace_h100.csv`).
2. bf16 matmul windows (≥ 1 s, fixed work): naive endpoint reads and the meter on the *same* windows.
3. AudioLDM-s architecture, random weights, fp16, 10 s audio, guidance 2.5, 100 steps, batch 1: a
   warm-up, then N single-generation windows (naive + meter on the same windows), interleaved with N
   generations with the meter stopped (overhead), then windows repeated to `--min-window-s`.
4. Sampler overhead on a launch-bound loop of tiny kernels (the worst case for a Python sampler thread),
   meter off vs on at several in-window samplings, interleaved in random order, and the slowdown
   against counter reads per second (`overhead_section`).

For every workload it reports the CV of the windows' durations beside the energy CVs (the work's own
variation is not the meter's error), the CV of the residual of energy regressed on duration, and the
agreement of two independent readings of each window (interpolated counter vs integrated power). Raw
samples are saved, so every figure can be recomputed with other interpolation settings.

    python benchmarks/meter_precision.py --out /tmp/m             # on the GPU
    python benchmarks/meter_precision.py --cpu-smoke --out /tmp/m # here: fake GPU, tiny model, ~30 s
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import gzip
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from t2a_ray.metering import Meter, MeterSettings, open_meter
from t2a_ray.metering.calibration import fit_counter_lag_s, fit_power_delay_s
from t2a_ray.metering.clock import Clock
from t2a_ray.metering.doctor import cv
from t2a_ray.metering.fakes import FakeGPU
from t2a_ray.metering.timeline import CounterTimeline, PowerTrace, counter_updates, update_period_s
from t2a_ray.orchestrator.device import TorchDevice

PROMPT = "Water running out of a faucet, some hitting a sink bottom, and some water filling a cup"


def log(*parts: Any) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


def residual_cv(energy: list[float], duration: list[float]) -> float | None:
    """CV of energy after removing what a straight line in duration explains (E = a + b·t)."""
    pairs = [(e, d) for e, d in zip(energy, duration, strict=True) if e is not None]
    if len(pairs) < 3:
        return None
    es, ds = [p[0] for p in pairs], [p[1] for p in pairs]
    md, me = statistics.mean(ds), statistics.mean(es)
    sdd = sum((d - md) ** 2 for d in ds)
    b = sum((d - md) * (e - me) for e, d in pairs) / sdd if sdd > 0 else 0.0
    res = [e - (me + b * (d - md)) for e, d in pairs]
    return math.sqrt(sum(r * r for r in res) / (len(res) - 2)) / me


def pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f} %"


# --------------------------------------------------------------------------------------------- environments
class _DriverNamedCuda(TorchDevice):
    """CUDA without torch's UUID: the meter asks the CUDA driver which GPU it is."""

    def uuid(self) -> str | None:
        return None


class GpuEnv:
    """The real thing: torch on CUDA, NVML through the meter's own device class."""

    smoke = False

    def __init__(self, sample_interval_s: float, interpolation: str):
        import torch

        self.torch = torch
        self.device = "cuda"
        torch.backends.cuda.matmul.allow_tf32 = True
        # history_s: keep every sample, the raw trace is part of the output
        settings = MeterSettings(sample_interval_s, interpolation=interpolation, history_s=1e9)
        device = TorchDevice("cuda")
        try:
            self.meter = open_meter(device, settings, require_gpu=True)
        except Exception as e:  # noqa: BLE001 — record it, then let the CUDA driver name the device
            log(
                f"open_meter with torch's uuid {device.uuid()!r} failed ({e}); asking the CUDA driver instead"
            )
            self.meter = open_meter(_DriverNamedCuda("cuda"), settings, require_gpu=True)
        self.gpu = self.meter.gpu
        import pynvml

        self.nvml = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(self.gpu.index)

    def sync(self) -> None:
        self.torch.cuda.synchronize()

    def naive_energy_mj(self) -> int:
        return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def matmul(self, n: int) -> Any:
        torch = self.torch
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
        out = torch.empty_like(a)

        def work() -> None:
            for _ in range(n):
                torch.matmul(a, b, out=out)

        return work

    def tiny_launches(self, n: int) -> Any:
        x = self.torch.zeros(16, device="cuda")

        def work() -> None:
            for _ in range(n):
                x.add_(1.0)

        return work

    def busy_step(self, seconds: float) -> Any:
        return self.matmul(max(1, int(seconds / 0.0018)))


class SmokeEnv:
    """CPU stand-in: a FakeGPU on real time whose power the 'work' sets; tiny torch model on the CPU."""

    smoke = True

    def __init__(self, sample_interval_s: float, interpolation: str):
        import torch

        self.torch = torch
        self.device = "cpu"
        clock = Clock()
        self.gpu = FakeGPU(clock, tick_phase_s=random.random() * 0.1, lag_s=0.0)
        settings = MeterSettings(sample_interval_s, interpolation=interpolation, history_s=1e9)
        self.meter = Meter(self.gpu, None, settings)

    def sync(self) -> None:
        pass

    def naive_energy_mj(self) -> int:
        return self.gpu.total_energy_mj()

    def matmul(self, n: int) -> Any:
        def work() -> None:
            self.gpu.busy(n * 0.0018 * random.uniform(0.99, 1.01), 650.0)

        return work

    def tiny_launches(self, n: int) -> Any:
        x = self.torch.zeros(16)

        def work() -> None:
            for _ in range(n):
                x.add_(1.0)

        return work

    def busy_step(self, seconds: float) -> Any:
        return self.matmul(max(1, int(seconds / 0.0018)))


# --------------------------------------------------------------------------------------- 1. characterisation
def characterise(env: Any, out: Path, seconds_idle: float, steps: int) -> dict[str, Any]:
    """Dense recording of counter and power around known busy steps; fits the lags."""
    res: dict[str, Any] = {}
    read_fields = None
    if not env.smoke:
        nvml, h = env.nvml, env.handle
        FI_E, FI_PI, FI_PA = 83, 186, 185

        def read_fields() -> tuple:
            v = nvml.nvmlDeviceGetFieldValues(h, [FI_E, FI_PI, FI_PA])
            return (
                v[0].value.ullVal if v[0].nvmlReturn == 0 else None,
                v[1].value.uiVal if v[1].nvmlReturn == 0 else None,
                v[2].value.uiVal if v[2].nvmlReturn == 0 else None,
                v[0].timestamp,
                v[1].timestamp,
            )

        costs = {}
        for name, fn in [
            ("nvmlDeviceGetTotalEnergyConsumption", lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(h)),
            ("nvmlDeviceGetPowerUsage", lambda: nvml.nvmlDeviceGetPowerUsage(h)),
            ("nvmlDeviceGetFieldValues[energy,power_instant,power_avg]", read_fields),
            ("nvmlDeviceGetTemperature", lambda: nvml.nvmlDeviceGetTemperature(h, 0)),
            ("meter._sample (one sampler tick)", env.meter._sample),
        ]:
            fn()
            t0 = time.perf_counter()
            for _ in range(300):
                fn()
            costs[name] = (time.perf_counter() - t0) / 300 * 1e6
        res["read_cost_us"] = costs
        log("read costs (µs):", {k: round(v, 1) for k, v in costs.items()})
        res["fields_first_read"] = read_fields()
        res["power_usage_mw_now"] = nvml.nvmlDeviceGetPowerUsage(h)
        res["power_kind_used_by_meter"] = env.gpu.power_kind()
    else:

        def read_fields() -> tuple:
            e, p = env.gpu.energy_and_power()
            return (e, p, p, 0, 0)

    rows: list[tuple] = []
    stop = threading.Event()

    def recorder() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            f = read_fields()
            t1 = time.perf_counter()
            rows.append((0.5 * (t0 + t1), *f))
            time.sleep(0.0008)

    busy: list[tuple[float, float]] = []
    th = threading.Thread(target=recorder, daemon=True)
    th.start()
    rng = random.Random(3)
    time.sleep(seconds_idle)
    for _ in range(steps):
        work = env.busy_step(rng.uniform(0.3, 0.5))
        env.sync()
        t0 = time.perf_counter()
        work()
        env.sync()
        t1 = time.perf_counter()
        busy.append((t0, t1))
        time.sleep(rng.uniform(0.35, 0.55))
    stop.set()
    th.join()

    t = [r[0] for r in rows]
    e = [r[1] for r in rows]
    pi = [r[2] for r in rows]
    pa = [r[3] for r in rows]
    ups = counter_updates(t, e)
    gaps = [b.time_s - a.time_s for a, b in zip(ups, ups[1:], strict=False)]
    period = update_period_s(ups)
    res["samples"] = len(rows)
    res["sample_gap_ms_median"] = 1e3 * statistics.median([b - a for a, b in zip(t, t[1:], strict=False)])
    res["counter_period_s"] = period
    res["counter_gap_ms_quantiles"] = (
        [round(1e3 * q, 2) for q in statistics.quantiles(gaps, n=20)] if len(gaps) > 20 else None
    )
    res["counter_bracket_ms_median"] = (
        1e3 * statistics.median([u.seen_s - u.before_s for u in ups]) if ups else None
    )
    # regularity: residual of update times against a straight line k·T + φ
    if len(ups) > 5:
        ks, us = [], []
        k = 0
        for a, b in zip(ups, ups[1:], strict=False):
            k += max(1, round((b.time_s - a.time_s) / period))
            ks.append(k)
            us.append(b.time_s)
        mk, mu = statistics.mean(ks), statistics.mean(us)
        slope = sum((x - mk) * (y - mu) for x, y in zip(ks, us, strict=False)) / sum(
            (x - mk) ** 2 for x in ks
        )
        resid = [y - (mu + slope * (x - mk)) for x, y in zip(ks, us, strict=False)]
        res["counter_grid_period_s"] = slope
        res["counter_grid_residual_ms_sd"] = 1e3 * statistics.pstdev(resid)
        res["counter_grid_residual_ms_maxabs"] = 1e3 * max(abs(r) for r in resid)
    # field timestamps: do they mark the counter's updates?
    if not env.smoke:
        ts = [r[4] for r in rows]
        changes_e = sum(1 for a, b in zip(e, e[1:], strict=False) if a != b)
        changes_ts = sum(1 for a, b in zip(ts, ts[1:], strict=False) if a != b)
        res["field_timestamp_changes_vs_counter_changes"] = [changes_ts, changes_e]
        pi_changes = [t[i] for i in range(1, len(pi)) if pi[i] != pi[i - 1]]
        res["power_instant_update_ms_median"] = (
            1e3 * statistics.median([b - a for a, b in zip(pi_changes, pi_changes[1:], strict=False)])
            if len(pi_changes) > 2
            else None
        )
        pa_changes = [t[i] for i in range(1, len(pa)) if pa[i] != pa[i - 1]]
        res["power_average_update_ms_median"] = (
            1e3 * statistics.median([b - a for a, b in zip(pa_changes, pa_changes[1:], strict=False)])
            if len(pa_changes) > 2
            else None
        )
    lag, rss = fit_counter_lag_s(ups, busy)
    res["counter_lag_s_fit"] = lag
    res["counter_lag_rss_by_ms"] = {round(k * 1e3): v for k, v in sorted(rss.items())[::5]}
    if any(p is not None for p in pi):
        tp = [x for x, p in zip(t, pi, strict=False) if p is not None]
        d_inst, _ = fit_power_delay_s(tp, [p for p in pi if p is not None], busy)
        res["power_instant_delay_s_fit"] = d_inst
    if any(p is not None for p in pa):
        tp = [x for x, p in zip(t, pa, strict=False) if p is not None]
        d_avg, _ = fit_power_delay_s(
            tp, [p for p in pa if p is not None], busy, tuple(i * 0.01 for i in range(0, 151))
        )
        res["power_average_delay_s_fit"] = d_avg
    # energy of each busy step: counter-interpolated (lag 0 and fitted; step and linear) vs power integral
    comparisons = []
    power = PowerTrace(t, pi, res.get("power_instant_delay_s_fit", 0.0))
    for lag_s in sorted({0.0, lag}):
        for interp in ("step", "linear"):
            tl = CounterTimeline(ups, lag_s, interp)
            rows_ = []
            for b0, b1 in busy:
                if tl.covers(b0) and tl.covers(b1) and power.covers(b0, b1):
                    ec = (tl.energy_mj_at(b1) - tl.energy_mj_at(b0)) * 1e-3
                    ep = power.integral_mj(b0, b1) * 1e-3
                    rows_.append(ec / ep - 1 if ep else None)
            vals = [r for r in rows_ if r is not None]
            comparisons.append(
                {
                    "lag_s": lag_s,
                    "interp": interp,
                    "counter_vs_power_mean": statistics.mean(vals) if vals else None,
                    "sd": statistics.pstdev(vals) if len(vals) > 1 else None,
                }
            )
    res["busy_steps_counter_vs_power"] = comparisons
    log(
        "characterisation:",
        json.dumps({k: v for k, v in res.items() if k not in ("counter_lag_rss_by_ms",)}, default=str),
    )

    # the replay fixture: relative times/energies, ≥ 2 ms apart (< 300 KB)
    t_base, e_base = t[0], next(x for x in e if x is not None)
    lines = [
        "# NVML trace recorded by benchmarks/meter_precision.py on the GPU named below.",
        f"# gpu: {env.gpu.name()}; driver {env.gpu.driver_version()}; recorded {time.strftime('%Y-%m-%d')}",
        "# busy_s: " + ";".join(f"{a - t_base:.6f},{b - t_base:.6f}" for a, b in busy),
        "t_s,energy_mj,power_instant_mw,power_average_mw",
    ]
    last = -1.0
    for r in rows:
        if r[0] - last < 0.002 or r[1] is None:
            continue
        last = r[0]
        lines.append(
            f"{r[0] - t_base:.6f},{r[1] - e_base},{r[2] if r[2] is not None else ''},{r[3] if r[3] is not None else ''}"
        )
    (out / "nvml_trace_h100.csv").write_text("\n".join(lines) + "\n")
    return res


# ---------------------------------------------------------------------------------------------- 2. matmuls
def windows_with_naive(
    env: Any, work: Any, n: int, label: str, gap_s: tuple[float, float]
) -> list[dict[str, Any]]:
    """`n` windows of `work`, each read naively (sync, read, work, sync, read) and by the meter."""
    meter = env.meter
    rng = random.Random(7)
    out = []
    for i in range(n):
        time.sleep(rng.uniform(*gap_s))  # random phase against the counter's ticks, as in real use
        cpu0 = time.process_time()
        with meter.window() as w:
            e0 = env.naive_energy_mj()
            t0 = time.perf_counter()
            work(w)
            env.sync()
            t1 = time.perf_counter()
            e1 = env.naive_energy_mj()
        closed = time.perf_counter()
        cpu_s = time.process_time() - cpu0
        r = w.result
        out.append(
            {
                "workload": label,
                "i": i,
                "duration_s": t1 - t0,
                "naive_j": (e1 - e0) * 1e-3,
                "meter_j": r.gpu_energy_j,
                "meter_net_j": r.gpu_energy_net_j,
                "power_integral_j": r.gpu_power_integral_j,
                "window_s": r.window_s,
                "start_s": r.start_s,
                "end_s": r.end_s,
                "phases_j": dict(r.phase_energy_j),
                "method": r.energy_method,
                "temp_c": [r.temperature_start_c, r.temperature_end_c],
                "generations": r.generations_in_window,
                "close_wait_s": closed - r.end_s,
                "cpu_s": cpu_s,
            }
        )
        log(
            f"{label} {i}: {t1 - t0:.3f} s naive {out[-1]['naive_j']:.1f} J meter {r.gpu_energy_j:.1f} J "
            f"power∫ {r.gpu_power_integral_j or float('nan'):.1f} J"
        )
    return out


def matmul_section(env: Any, repeats: int, target_s: float) -> list[dict[str, Any]]:
    probe = env.matmul(30)
    probe()
    env.sync()
    t0 = time.perf_counter()
    probe()
    env.sync()
    per = (time.perf_counter() - t0) / 30
    n = math.ceil(target_s * 1.05 / per)
    log(f"matmul: {per * 1e3:.3f} ms each, {n} per window")
    work = env.matmul(n)
    work()  # warm-up at full power (clocks, power limit)
    env.sync()
    return windows_with_naive(env, lambda w: work(), repeats, "matmul", (0.1, 0.4))


# ------------------------------------------------------------------------------------------------ 3. AudioLDM
def byte_level_vocab() -> dict[str, int]:
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in cs:
        vocab.setdefault(chr(c), len(vocab))
    vocab["<mask>"] = len(vocab)
    return vocab


def build_audioldm_local(torch: Any, device: str, dtype: Any, tiny: bool) -> Any:
    """AudioLDM-s (cvssp/audioldm-s-full-v2) from its conversion-script config, random weights, built on
    `device`. A byte-level stand-in tokenizer (no download) padding to 512 tokens like CLAP's."""
    from diffusers import AudioLDMPipeline, AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import (
        ClapTextConfig,
        ClapTextModelWithProjection,
        RobertaTokenizer,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
    )

    if tiny:
        blocks, vae_blocks, text = (
            (32, 64),
            (32, 64),
            dict(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=37,
                projection_dim=32,
            ),
        )
        film, vocoder_ch = 32, 64
    else:
        blocks, vae_blocks, text = (128, 256, 384, 640), (128, 256, 512), {}
        film, vocoder_ch = 512, 1024
    n = len(blocks)
    with torch.device(device):
        unet = UNet2DConditionModel(
            sample_size=128,
            in_channels=8,
            out_channels=8,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
            block_out_channels=blocks,
            layers_per_block=2,
            cross_attention_dim=blocks,
            class_embed_type="simple_projection",
            projection_class_embeddings_input_dim=film,
            class_embeddings_concat=True,
            norm_num_groups=32 if not tiny else 16,
        )
        vae = AutoencoderKL(
            in_channels=1,
            out_channels=1,
            latent_channels=8,
            block_out_channels=vae_blocks,
            layers_per_block=2,
            down_block_types=("DownEncoderBlock2D",) * len(vae_blocks),
            up_block_types=("UpDecoderBlock2D",) * len(vae_blocks),
            norm_num_groups=32 if not tiny else 16,
            scaling_factor=0.9227,
        )
        text_encoder = ClapTextModelWithProjection(ClapTextConfig(**text))
        vocoder = SpeechT5HifiGan(
            SpeechT5HifiGanConfig(
                model_in_dim=64,
                sampling_rate=16000,
                upsample_initial_channel=vocoder_ch,
                upsample_rates=[5, 4, 2, 2, 2],
                upsample_kernel_sizes=[16, 16, 8, 4, 4],
                resblock_kernel_sizes=[3, 7, 11],
                resblock_dilation_sizes=[[1, 3, 5]] * 3,
                normalize_before=False,
            )
        )
    scheduler = DDIMScheduler(
        beta_start=0.0015,
        beta_end=0.0195,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        clip_sample=False,
        set_alpha_to_one=False,
        prediction_type="epsilon",
    )
    tokenizer = RobertaTokenizer(vocab=byte_level_vocab(), merges=[], model_max_length=512)
    pipe = AudioLDMPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        vocoder=vocoder,
    )
    pipe = pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class PhaseHooks:
    """Marks phases through module hooks (hook, don't fork): text encoder, UNet, VAE decoder, vocoder."""

    def __init__(self, pipe: Any):
        self.marker = None
        self.current = None
        for module, phase in (
            (pipe.text_encoder, "text_encoder"),
            (pipe.unet, "denoise"),
            (pipe.vae.decoder, "decode"),
            (pipe.vocoder, "vocoder"),
        ):
            module.register_forward_pre_hook(self._hook(phase))

    def _hook(self, phase: str) -> Any:
        def hook(module: Any, args: Any) -> None:
            if self.marker is not None and phase != self.current:
                self.current = phase
                self.marker(phase)

        return hook

    def run(self, fn: Any, marker: Any) -> Any:
        self.marker, self.current = marker, None
        try:
            return fn()
        finally:
            self.marker = None


def audioldm_section(env: Any, args: Any) -> dict[str, Any]:
    torch = env.torch
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    generate = None
    if args.model in ("adapter", "auto") and not env.smoke:
        try:
            from t2a_ray.adapters import adapter_class

            adapter = adapter_class("audioldm").load(device="cuda", dtype="float16", weights="random")
            params = adapter.check(
                {"steps": args.steps, "guidance_scale": 2.5, "duration_s": 10.0, "batch_size": 1}
            )

            def generate(marker: Any, seed: int = 0) -> None:
                adapter.generate([PROMPT], params, seed, marker)

            generate(lambda p: None)
            info["model"] = "t2a_ray.adapters audioldm (random weights)"
        except Exception as e:  # noqa: BLE001 — the benchmark falls back to its own build
            info["adapter_error"] = f"{type(e).__name__}: {e}"
            log("adapter unavailable, building locally:", info["adapter_error"])
            generate = None
    if generate is None:
        dtype = torch.float16 if not env.smoke else torch.float32
        pipe = build_audioldm_local(torch, env.device, dtype, tiny=env.smoke)
        hooks = PhaseHooks(pipe)
        steps = args.steps if not env.smoke else 5
        length_s = 10.0 if not env.smoke else 1.0

        def generate(marker: Any, seed: int = 0) -> None:
            g = torch.Generator(env.device).manual_seed(seed)
            if env.smoke:
                env.gpu.set_power_w(150.0)
            hooks.run(
                lambda: pipe(
                    PROMPT,
                    num_inference_steps=steps,
                    audio_length_in_s=length_s,
                    guidance_scale=2.5,
                    num_waveforms_per_prompt=1,
                    generator=g,
                    output_type="np",
                ),
                marker,
            )
            if env.smoke:
                env.gpu.set_power_w(env.gpu.idle_power_w)

        info["model"] = "local AudioLDM-s build (diffusers AudioLDMPipeline, random weights)"
        info["unet_params"] = sum(p.numel() for p in pipe.unet.parameters())
    info["build_s"] = time.perf_counter() - t0
    log("AudioLDM ready:", info)

    meter = env.meter
    warm = meter.warm_up(generate, generations=1)
    info["warmup_j"] = warm[0].gpu_energy_j
    info["warmup_s"] = warm[0].window_s
    rows: list[dict[str, Any]] = []
    off_s: list[float] = []
    for i in range(args.repeats):
        rows += windows_with_naive(env, generate, 1, "audioldm", (0.05, 0.2))
        rows[-1]["i"] = i
        # the same generation with the meter stopped: the overhead comparison
        meter.close()
        env.sync()
        a = time.perf_counter()
        generate(lambda p: None)
        env.sync()
        off_s.append(time.perf_counter() - a)
        meter.start()
    info["meter_off_duration_s"] = off_s
    rep = []
    for i in range(args.min_window_repeats):
        time.sleep(random.uniform(0.05, 0.2))
        r = meter.measure(generate, min_window_s=args.min_window_s)
        rep.append(
            {
                "workload": "audioldm-minwindow",
                "i": i,
                "window_s": r.window_s,
                "generations": r.generations_in_window,
                "meter_j": r.gpu_energy_j,
                "power_integral_j": r.gpu_power_integral_j,
                "phases_j": dict(r.phase_energy_j),
                "start_s": r.start_s,
                "end_s": r.end_s,
                "duration_s": r.window_s,
            }
        )
        log(
            f"min-window {i}: {r.generations_in_window} generations, {r.window_s:.2f} s, {r.gpu_energy_j:.1f} J"
        )
    info["rows"] = rows
    info["minwindow_rows"] = rep
    return info


# ------------------------------------------------------------------------------------------------ 4. overhead
def sampler_cpu_ns() -> int | None:
    """CPU time (ns) of the meter's sampler thread so far, from Linux's per-thread schedstat; None
    where that is not readable (not Linux) or no sampler is running."""
    for thread in threading.enumerate():
        if thread.name == "t2a-ray-sampler" and thread.native_id is not None:
            return schedstat_cpu_ns(f"/proc/self/task/{thread.native_id}/schedstat")
    return None


def schedstat_cpu_ns(path: str) -> int | None:
    """The CPU time (ns) a Linux schedstat file reports; None where it cannot be read."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def overhead_section(
    env: Any, samplings: list[str], blocks: int, max_s: float | None = None, other_process: bool = False
) -> dict[str, Any]:
    """A launch-bound loop of tiny kernels (~0.3 s) timed with the meter off and inside a metered window
    for each in-window sampling ("ticks": one read per counter tick, the default; a number: a read
    every that many seconds), all interleaved: each block runs every condition once, in a fresh random
    order, and each condition's slowdown is its time over the same block's meter-off time. Host states
    that last minutes then touch every condition alike (sequential sections, run before, disagreed by
    more than their CIs). `blocks` blocks, or as many as fit in `max_s` seconds.

    Beside each condition's median slowdown (distribution-free 95 % CI), the dose-response: slowdown
    against counter reads per second of window, fitted with and without an intercept and bootstrapped
    over blocks. The read rates span 10–200/s, so the slope is resolved where the effect is large and
    the low rates are read off the line, not off one noisy median.

    With `other_process`, also the old paired comparison of the same NVML reads made by another process
    (no GIL shared: what remains is the driver's own cost of a read)."""
    meter = env.meter
    probe = env.tiny_launches(200)
    probe()
    env.sync()
    t0 = time.perf_counter()
    probe()
    env.sync()
    n = max(200, int(0.3 / ((time.perf_counter() - t0) / 200)))
    work = env.tiny_launches(n)
    original = meter.window_sample_interval_s, meter.read_per_tick

    def metered(sampling: str) -> Any:
        @contextlib.contextmanager
        def on() -> Any:
            meter.read_per_tick = sampling == "ticks"
            if sampling != "ticks":
                meter.window_sample_interval_s = float(sampling)
            meter.start()
            with meter.window():
                yield

        return on

    def unmetered() -> Any:
        meter.close()
        return contextlib.nullcontext()

    conditions = {"off": unmetered, **{sampling: metered(sampling) for sampling in samplings}}
    times: dict[str, list[float]] = {name: [] for name in conditions}
    reads = dict.fromkeys(conditions, 0)
    cpu_s = dict.fromkeys(conditions, 0.0)
    rng = random.Random(0)
    deadline = time.perf_counter() + max_s if max_s else math.inf
    while len(times["off"]) < blocks and time.perf_counter() < deadline:
        order = list(conditions)
        rng.shuffle(order)
        for name in order:
            with conditions[name]():
                env.sync()
                cpu0 = sampler_cpu_ns()
                a = time.perf_counter()
                work()
                env.sync()
                b = time.perf_counter()
                cpu1 = sampler_cpu_ns()
            times[name].append(b - a)
            if name != "off":
                reads[name] += len(meter.samples(a)["t_s"]) - len(meter.samples(b)["t_s"])
                if cpu0 is not None and cpu1 is not None:
                    cpu_s[name] += (cpu1 - cpu0) / 1e9
    meter.window_sample_interval_s, meter.read_per_tick = original
    meter.start()

    off = times["off"]
    result: dict[str, Any] = {
        "launches_per_rep": n,
        "blocks": len(off),
        "off_median_s": statistics.median(off),
        "off_cv": cv(off),
    }
    for sampling in samplings:
        on = times[sampling]
        result[sampling] = {
            **ratio_summary([x / y - 1 for x, y in zip(on, off, strict=True)]),
            "on_median_s": statistics.median(on),
            "on_cv": cv(on),
            "counter_reads_per_window_s": reads[sampling] / sum(on),
            # CPU time of the sampler per second of window: an upper bound on the time it can hold the
            # GIL (NVML calls release it), hence on what it can take from the launching thread
            "sampler_cpu_per_window_s": cpu_s[sampling] / sum(on) if cpu_s[sampling] else None,
        }
        _log_overhead(f"in-window sampling {sampling}", result[sampling])
    result["dose_response"] = dose_response(
        times, samplings, {k: result[k]["counter_reads_per_window_s"] for k in samplings}
    )
    log("overhead vs counter reads per s:", json.dumps(result["dose_response"]))

    if other_process and not env.smoke:
        meter.close()
        for sampling in (x for x in samplings if x != "ticks"):
            with NvmlReaderProcess(meter.gpu.index, float(sampling)) as reader:
                r = _paired_overhead(env, work, reader.reading, lambda: None, reader.cpu_ns, blocks, max_s)
            result[f"{sampling}-other-process"] = r
            _log_overhead(f"NVML reads every {float(sampling) * 1e3:.0f} ms from another process", r)
        meter.start()
    return result


def ratio_summary(ratios: list[float]) -> dict[str, Any]:
    """The median slowdown with a distribution-free 95 % CI (order statistics n/2 ± 1.96·√n/2)."""
    ratios = sorted(ratios)
    half = math.ceil(1.96 * math.sqrt(len(ratios)) / 2)
    mid = len(ratios) // 2
    return {
        "pairs": len(ratios),
        "pair_ratio_quartiles": [ratios[len(ratios) // 4], ratios[mid], ratios[(3 * len(ratios)) // 4]],
        "pair_ratio_median_ci95": [ratios[max(0, mid - half)], ratios[min(len(ratios) - 1, mid + half)]],
    }


def dose_response(
    times: dict[str, list[float]], samplings: list[str], reads_per_s: dict[str, float], resamples: int = 2000
) -> dict[str, Any]:
    """Median slowdown (vs the block's meter-off time) against counter reads per second: the slope
    through the origin (no reads, no cost) and the line with an intercept (which checks that model),
    each with 95 % bootstrap CIs over blocks, and what each predicts at every sampling's read rate."""
    x = [reads_per_s[s] for s in samplings]
    blocks = len(times["off"])

    def fit(rows: list[int]) -> tuple[float, float, float]:
        y = [statistics.median(times[s][i] / times["off"][i] - 1 for i in rows) for s in samplings]
        origin = sum(a * b for a, b in zip(x, y, strict=True)) / sum(a * a for a in x)
        slope, intercept = statistics.linear_regression(x, y)
        return origin, slope, intercept

    def ci(values: list[float]) -> list[float]:
        values = sorted(values)
        return [values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]]

    rng = random.Random(1)
    boot = [fit([rng.randrange(blocks) for _ in range(blocks)]) for _ in range(resamples)]
    origin, slope, intercept = fit(list(range(blocks)))
    return {
        "reads_per_s": dict(zip(samplings, x, strict=True)),
        "slope_through_origin_per_read_per_s": origin,
        "slope_through_origin_ci95": ci([b[0] for b in boot]),
        "slope_per_read_per_s": slope,
        "slope_ci95": ci([b[1] for b in boot]),
        "intercept": intercept,
        "intercept_ci95": ci([b[2] for b in boot]),
        "predicted_through_origin": {s: origin * r for s, r in zip(samplings, x, strict=True)},
        "predicted_through_origin_ci95": {
            s: ci([b[0] * r for b in boot]) for s, r in zip(samplings, x, strict=True)
        },
    }


def _paired_overhead(
    env: Any, work: Any, on: Any, off: Any, cpu_ns: Any, pairs: int, max_s: float | None
) -> dict[str, Any]:
    """Time `work` with `on()` (a context) vs after `off()`, in ABBA order: the median pair ratio with
    its CI, and the CPU time `cpu_ns()` counts per second of the "on" runs."""
    on_s, off_s, cpu_s = [], [], []
    deadline = time.perf_counter() + max_s if max_s else math.inf
    for k in range(pairs):
        if time.perf_counter() > deadline and k % 2 == 0:  # whole ABBA blocks only
            break
        for state in (True, False) if k % 2 == 0 else (False, True):
            if state:
                with on():
                    env.sync()
                    cpu0 = cpu_ns()
                    a = time.perf_counter()
                    work()
                    env.sync()
                    on_s.append(time.perf_counter() - a)
                    cpu1 = cpu_ns()
                if cpu0 is not None and cpu1 is not None:
                    cpu_s.append((cpu1 - cpu0) / 1e9)
            else:
                off()
                env.sync()
                a = time.perf_counter()
                work()
                env.sync()
                off_s.append(time.perf_counter() - a)
    return {
        **ratio_summary([x / y - 1 for x, y in zip(on_s, off_s, strict=True)]),
        "on_median_s": statistics.median(on_s),
        "off_median_s": statistics.median(off_s),
        "on_cv": cv(on_s),
        "off_cv": cv(off_s),
        "sampler_cpu_per_window_s": sum(cpu_s) / sum(on_s) if cpu_s else None,
    }


def _log_overhead(what: str, r: dict[str, Any]) -> None:
    log(
        f"overhead, {what}: median {pct(r['pair_ratio_quartiles'][1])} over {r['pairs']} pairs (95 % CI {[pct(q) for q in r['pair_ratio_median_ci95']]}; "
        f"quartiles {[pct(q) for q in r['pair_ratio_quartiles']]}); sampler CPU {pct(r['sampler_cpu_per_window_s'], 3)} of the window; "
        f"{r.get('counter_reads_per_window_s') or 0:.1f} counter reads per s"
    )


def _read_nvml_while(index: int, interval_s: float, on: Any, stop: Any) -> None:
    """The other process: read the counter and power field every `interval_s` while `on` is set."""
    import pynvml

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    while not stop.is_set():
        if on.wait(0.05):
            pynvml.nvmlDeviceGetFieldValues(handle, [83, 186])  # energy counter, instantaneous power
            time.sleep(interval_s)


class NvmlReaderProcess:
    """A spawned process that reads NVML on demand (`with reader.reading(): ...`)."""

    def __init__(self, index: int, interval_s: float):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # never fork a process that holds a CUDA context
        self.interval_s = interval_s
        self._on, self._stop = ctx.Event(), ctx.Event()
        self._proc = ctx.Process(
            target=_read_nvml_while, args=(index, interval_s, self._on, self._stop), daemon=True
        )

    def __enter__(self) -> NvmlReaderProcess:
        self._proc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._proc.join(5)

    @contextlib.contextmanager
    def reading(self):
        if not self._proc.is_alive():
            raise RuntimeError(f"the NVML reader process is not running (exit code {self._proc.exitcode})")
        self._on.set()
        time.sleep(self.interval_s)  # it is reading before the timed work starts
        try:
            yield
        finally:
            self._on.clear()

    def cpu_ns(self) -> int | None:
        return schedstat_cpu_ns(f"/proc/{self._proc.pid}/schedstat")


def nvml_cost_section(env: Any, calls: int = 200) -> dict[str, Any]:
    """Wall and CPU time of one call of each NVML reading the meter could use (median over `calls`)."""
    from t2a_ray.metering.gpu import NVML_FI_DEV_POWER_INSTANT, NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION

    gpu = env.meter.gpu
    readers = {
        "total_energy_consumption": gpu.total_energy_mj,
        "fields_energy": lambda: gpu._field_values((NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION,)),
        "fields_power_instant": lambda: gpu._field_values((NVML_FI_DEV_POWER_INSTANT,)),
        "fields_energy_and_power": lambda: gpu._field_values(
            (NVML_FI_DEV_TOTAL_ENERGY_CONSUMPTION, NVML_FI_DEV_POWER_INSTANT)
        ),
        "power_usage_1s_average": gpu._average_power_mw,
    }
    out = {}
    for name, read in readers.items():
        wall, cpu = [], []
        for _ in range(calls):
            w0, c0 = time.perf_counter(), time.thread_time()
            read()
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
        out[name] = {
            "wall_ms_median": 1e3 * statistics.median(wall),
            "cpu_ms_median": 1e3 * statistics.median(cpu),
        }
        log(
            f"NVML {name}: {out[name]['wall_ms_median']:.3f} ms wall, {out[name]['cpu_ms_median']:.3f} ms CPU per call"
        )
    return out


# ------------------------------------------------------------------------------------------------- analysis
def recompute(
    samples: dict[str, list], rows: list[dict[str, Any]], lag_s: float, interp: str
) -> list[float | None]:
    """The meter's energy for each window, recomputed from the raw samples with other settings."""
    t, e = samples["t_s"], samples["energy_mj"]
    tl = CounterTimeline(counter_updates(t, e), lag_s, interp)
    out = []
    for r in rows:
        if tl.covers(r["start_s"]) and tl.covers(r["end_s"]):
            out.append((tl.energy_mj_at(r["end_s"]) - tl.energy_mj_at(r["start_s"])) * 1e-3)
        else:
            out.append(None)
    return out


def summarise(
    label: str,
    rows: list[dict[str, Any]],
    samples: dict[str, list],
    lags_s: dict[str, float],
    power_delay_s: float,
) -> dict[str, Any]:
    dur = [r["duration_s"] for r in rows]
    win = [r["window_s"] for r in rows]
    s: dict[str, Any] = {
        "workload": label,
        "n": len(rows),
        "duration_mean_s": statistics.mean(dur),
        "duration_cv": cv(dur),
        "window_cv": cv(win),
    }
    if "naive_j" in rows[0]:
        naive = [r["naive_j"] for r in rows]
        s["naive_mean_j"] = statistics.mean(naive)
        s["naive_cv"] = cv(naive)
        s["naive_residual_cv"] = residual_cv(naive, dur)
    meter = [r["meter_j"] for r in rows]
    s["meter_mean_j"] = statistics.mean(meter)
    s["meter_cv"] = cv(meter)
    s["meter_residual_cv"] = residual_cv(meter, win)
    s["meter_per_s_cv"] = cv([m / w for m, w in zip(meter, win, strict=True)])
    if rows[0].get("meter_net_j") is not None:
        s["meter_net_cv"] = cv([r["meter_net_j"] for r in rows])
    if rows[0].get("cpu_s") is not None:
        s["cpu_s_mean"] = statistics.mean(r["cpu_s"] for r in rows)
        s["cpu_s_cv"] = cv([r["cpu_s"] for r in rows])
    # the second, independent reading: power samples (shifted by their delay) integrated over each window
    power = PowerTrace(samples["t_s"], samples["power_mw"], power_delay_s)
    pj = [
        power.integral_mj(r["start_s"], r["end_s"]) * 1e-3 if power.covers(r["start_s"], r["end_s"]) else None
        for r in rows
    ]
    if all(x is not None for x in pj):
        d = [m / q - 1 for m, q in zip(meter, pj, strict=True)]
        s["power_integral_mean_j"] = statistics.mean(pj)
        s["power_integral_cv"] = cv(pj)
        s["counter_vs_power_mean"] = statistics.mean(d)
        s["counter_vs_power_sd"] = statistics.pstdev(d)
    # what the meter's schedule cost inside the windows (one read per tick is 10/s on the H100)
    reads = sum(
        bisect.bisect_left(samples["t_s"], r["end_s"]) - bisect.bisect_right(samples["t_s"], r["start_s"])
        for r in rows
    )
    s["counter_reads_per_window_s"] = reads / sum(win)
    gens = [r.get("generations", 1) for r in rows]
    s["generations"] = gens
    s["meter_per_generation_cv"] = cv([m / g for m, g in zip(meter, gens, strict=True)])
    variants = {}
    for lag_name, lag in lags_s.items():
        for interp in ("step", "linear"):
            vals = recompute(samples, rows, lag, interp)
            if all(v is not None for v in vals):
                variants[f"{interp},lag={lag_name}({lag * 1e3:.0f}ms)"] = {
                    "cv": cv(vals),
                    "residual_cv": residual_cv(vals, win),
                    "mean_j": statistics.mean(vals),
                }
    s["variants"] = variants
    return s


def table(summaries: list[dict[str, Any]]) -> str:
    head = (
        "| workload | windows | duration mean | duration CV | naive CV | meter CV | meter CV per generation | "
        "meter CV of residual on duration | naive CV of residual | meter mean | counter − power∫ (mean ± sd) | "
        "counter reads per s of window |"
    )
    lines = [head, "|" + "---|" * 12]
    for s in summaries:
        lines.append(
            f"| {s['workload']} | {s['n']} | {s['duration_mean_s']:.3f} s | {pct(s['duration_cv'])} | {pct(s.get('naive_cv'))} | "
            f"{pct(s['meter_cv'])} | {pct(s.get('meter_per_generation_cv'))} | {pct(s['meter_residual_cv'])} | "
            f"{pct(s.get('naive_residual_cv'))} | {s['meter_mean_j']:.1f} J | "
            f"{pct(s.get('counter_vs_power_mean'))} ± {pct(s.get('counter_vs_power_sd'))} | {s['counter_reads_per_window_s']:.1f} |"
        )
    return "\n".join(lines)


def sampling_list(text: str) -> list[str]:
    """--overhead-intervals: 'ticks' or seconds in (0, 0.05], comma-separated."""
    items = text.split(",")
    for x in items:
        if x != "ticks":
            try:
                ok = 0 < float(x) <= 0.05
            except ValueError:
                ok = False
            if not ok:
                raise argparse.ArgumentTypeError(f"{x!r}: must be 'ticks' or seconds in (0, 0.05]")
    return items


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "meter_out"))
    ap.add_argument(
        "--cpu-smoke", action="store_true", help="fake GPU on the CPU, tiny model: checks the script runs"
    )
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--matmul-s", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--min-window-s", type=float, default=7.0)
    ap.add_argument("--min-window-repeats", type=int, default=3)
    ap.add_argument("--sample-interval-s", type=float, default=0.005)
    ap.add_argument("--interpolation", default="step", choices=("step", "linear"))
    ap.add_argument(
        "--counter-lag-s",
        default="hint",
        help="seconds, 'hint' (the GPU's measured default) or 'fit' (section 1)",
    )
    ap.add_argument(
        "--overhead-intervals",
        type=sampling_list,
        default="ticks,0.05,0.02,0.01,0.005",
        help="in-window samplings to time: 'ticks' (one read per counter tick, the default) or seconds between reads",
    )
    ap.add_argument(
        "--overhead-blocks",
        type=int,
        default=100,
        help="blocks of interleaved conditions (each: meter off + every sampling)",
    )
    ap.add_argument(
        "--overhead-other-process", action="store_true", help="also time NVML reads made by another process"
    )
    ap.add_argument(
        "--overhead-max-s", type=float, default=None, help="stop adding blocks after this many seconds"
    )
    ap.add_argument("--model", default="auto", choices=("auto", "adapter", "local"))
    ap.add_argument(
        "--skip", default="", help="comma list of sections to skip: characterise,matmul,audioldm,overhead"
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    if args.cpu_smoke:
        args.repeats = min(args.repeats, 3)
        args.matmul_s = 0.3
        args.min_window_s = 0.5
        args.min_window_repeats = 2
        args.overhead_blocks = 3

    env = (SmokeEnv if args.cpu_smoke else GpuEnv)(args.sample_interval_s, args.interpolation)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": " ".join(sys.argv),
        "python": platform.python_version(),
        "torch": env.torch.__version__,
        "smoke": args.cpu_smoke,
        "args": vars(args),
    }
    meter = env.meter
    meter.start()
    report["provenance"] = meter.provenance()
    log("provenance:", report["provenance"])
    if not args.cpu_smoke:
        from t2a_ray.metering.gpu import cuda_device_uuid

        report["uuid_check"] = {
            "torch": str(env.torch.cuda.get_device_properties(0).uuid),
            "cuda_driver_ctypes": cuda_device_uuid(0),
            "meter": report["provenance"]["gpu_uuid"],
        }
        log("uuid check:", report["uuid_check"])

    # Idle first, while the GPU has been idle for a while (right after work it idles higher).
    idle = meter.measure_idle(2.0 if not args.cpu_smoke else 0.5)
    report["idle_power_w"] = idle
    log(f"idle power {idle:.1f} W")

    sections: dict[str, Any] = {}
    hint_lag_s, power_delay_s = meter.counter_lag_s, meter.power_delay_s
    fit_lag_s = None
    if "characterise" not in skip:
        try:
            meter.close()  # the characterisation records on its own, densely
            sections["characterise"] = ch = characterise(env, out, 0.5, 5 if not args.cpu_smoke else 2)
            fit_lag_s = ch["counter_lag_s_fit"]
        except Exception:  # noqa: BLE001 — keep going: the other sections are worth having
            sections["characterise_error"] = traceback.format_exc()
            log(sections["characterise_error"])
        meter.start()
    if args.counter_lag_s == "fit" and fit_lag_s is not None:
        meter.counter_lag_s = fit_lag_s
    elif args.counter_lag_s not in ("fit", "hint"):
        meter.counter_lag_s = float(args.counter_lag_s)
    lag_s = meter.counter_lag_s
    lags = {"used": lag_s, "zero": 0.0}
    if fit_lag_s is not None:
        lags["fit"] = fit_lag_s
    report["meter_settings"] = {
        "counter_lag_s": lag_s,
        "counter_lag_hint_s": hint_lag_s,
        "counter_lag_fit_s": fit_lag_s,
        "power_delay_s": power_delay_s,
        "interpolation": meter.interpolation,
        "sample_interval_s": meter.sample_interval_s,
        "window_sample_interval_s": meter.window_sample_interval_s,
    }
    log("meter settings:", report["meter_settings"])

    def checkpoint() -> None:  # raw rows survive even if a later section overruns the time limit
        (out / "meter_precision.json").write_text(
            json.dumps({**report, "sections": sections}, indent=1, default=str)
        )

    checkpoint()
    summaries = []
    if "matmul" not in skip:
        try:
            rows = matmul_section(env, args.repeats, args.matmul_s)
            sections["matmul_rows"] = rows
        except Exception:  # noqa: BLE001
            sections["matmul_error"] = traceback.format_exc()
            log(sections["matmul_error"])
        checkpoint()
    if "audioldm" not in skip:
        try:
            sections["audioldm"] = audioldm_section(env, args)
        except Exception:  # noqa: BLE001
            sections["audioldm_error"] = traceback.format_exc()
            log(sections["audioldm_error"])
        checkpoint()
    if "overhead" not in skip:
        try:
            if not args.cpu_smoke:
                env.meter.close()  # the sampler off while each reading is timed
                sections["nvml_cost"] = nvml_cost_section(env)
                env.meter.start()
            sections["overhead"] = overhead_section(
                env,
                args.overhead_intervals,
                args.overhead_blocks,
                args.overhead_max_s,
                args.overhead_other_process,
            )
        except Exception:  # noqa: BLE001
            sections["overhead_error"] = traceback.format_exc()
            log(sections["overhead_error"])

    samples = meter.samples()
    meter.close()
    if "matmul_rows" in sections:
        summaries.append(
            summarise("matmul bf16 8192³, ≥1 s", sections["matmul_rows"], samples, lags, power_delay_s)
        )
    a = sections.get("audioldm")
    if a:
        summaries.append(
            summarise(
                f"AudioLDM-s {args.steps} steps, 1 generation/window", a["rows"], samples, lags, power_delay_s
            )
        )
        if a["minwindow_rows"]:
            summaries.append(
                summarise(
                    f"AudioLDM-s, min_window_s={args.min_window_s}",
                    a["minwindow_rows"],
                    samples,
                    lags,
                    power_delay_s,
                )
            )
        on = [r["duration_s"] for r in a["rows"]]
        off = a["meter_off_duration_s"]
        a["overhead_generation"] = {
            "on_mean_s": statistics.mean(on),
            "off_mean_s": statistics.mean(off),
            "on_median_s": statistics.median(on),
            "off_median_s": statistics.median(off),
            "overhead_mean": statistics.mean(on) / statistics.mean(off) - 1,
            "overhead_median": statistics.median(on) / statistics.median(off) - 1,
            "off_cv": cv(off),
        }
        phases = [r["phases_j"] for r in a["rows"]]
        a["phase_mean_j"] = {k: statistics.mean(p.get(k, 0.0) for p in phases) for k in phases[0]}
        a["phase_cv"] = {k: cv([p.get(k, 0.0) for p in phases]) for k in phases[0]}
    report["sections"] = sections
    report["summaries"] = summaries
    md = table(summaries) if summaries else "(no windows measured)"
    report["table_md"] = md
    (out / "meter_precision.json").write_text(json.dumps(report, indent=1, default=str))
    with gzip.open(out / "meter_samples.json.gz", "wt") as f:
        json.dump(samples, f)
    (out / "meter_precision_table.md").write_text(md + "\n")
    print()
    print(md)
    for s in summaries:
        print(s["workload"], "variants:", json.dumps(s["variants"]))
    if a:
        print("AudioLDM generation time, meter on vs off:", json.dumps(a.get("overhead_generation")))
        print("AudioLDM phases (mean J):", json.dumps(a.get("phase_mean_j")))
    if "overhead" in sections:
        print("launch-bound overhead:", json.dumps(sections["overhead"]))
    if "characterise" in sections:
        c = sections["characterise"]
        print(
            "counter:",
            json.dumps(
                {
                    k: c.get(k)
                    for k in (
                        "counter_period_s",
                        "counter_grid_residual_ms_sd",
                        "counter_lag_s_fit",
                        "power_instant_delay_s_fit",
                        "power_average_delay_s_fit",
                        "power_instant_update_ms_median",
                        "busy_steps_counter_vs_power",
                    )
                },
                default=str,
            ),
        )
    errors = [k for k in sections if k.endswith("_error")]
    if errors:
        print("SECTIONS FAILED:", errors)
    return 1 if errors else 0


if __name__ == "__main__":
    tempfile.tempdir = os.environ.get("TMPDIR") or None
    sys.exit(main())
