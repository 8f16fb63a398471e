#!/usr/bin/python3
"""PyTorch reference training-throughput benchmark for ljtrain.

PyTorch is only a *reference tool* here; ljtrain does not depend on it.
It measures training samples/s (forward + loss + backward + AdamW step, data
already in memory) for the same models and batch that ljtrain trains on ONNX
Runtime, with and without the Lennard-Jones (LJ) auxiliary loss.

Run with Debian's interpreter, which sees python3-torch:

    /usr/bin/python3 tools/torch_reference.py [--model mlp|vit|all]
        [--threads 2] [--steps N] [--json out.json]

Models (must match ljtrain's ONNX models exactly):
  mlp-fmnist       784 -> 256 -> ReLU -> 128 -> ReLU -> 10;
                   LJ on the last hidden activations, BATCH particles (1,B,128)
  vit-tiny-fmnist  patch 4 (49 patches x 16), embed 64, cls token, learned pos
                   emb (1,50,64), 4 pre-norm blocks (4 heads of 16, MLP 256,
                   exact GELU), final LN; LJ on the final LN output, TOKEN
                   particles (B,50,64); head on token 0.
                   'vit' = attention by hand (matmul + softmax);
                   'vit-mha' = same model with nn.MultiheadAttention.
Loss: cross-entropy [+ 0.1 * lj_loss(sigma=0.5, n=6, clamp_max=5)] (paper,
appendix E.2, listing reproduced verbatim below).
Optimizer: AdamW(lr=1e-3, betas=(0.9, 0.999), weight_decay=5e-5); both
foreach=True and foreach=False are measured, the faster one is reported.

Threads.  The environment is left as is (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
etc. are only reported, never changed).  Debian's torch has its own OpenMP
intra-op pool *and* calls the pthread OpenBLAS for GEMM, which has a separate
pool that torch.set_num_threads() does not touch (OpenBLAS defaults to all
cores).  With both pools at 2 threads on 2 cores, the spinning pools fight and
training runs 3-20x slower, so for a budget of T threads the script measures
the splits (torch T, OpenBLAS 1) and (torch 1, OpenBLAS T) (OpenBLAS threads
set via ctypes openblas_set_num_threads) and reports the faster;
--blas-threads forces one split.  T=1 means (1, 1).

Load.  Other processes may share the 2 cores.  Before each timed run the
script can wait (up to --wait-idle s) for the machine to be idle; it records how
many cores other processes used ("other", from /proc/stat minus this
process's CPU time), times in ~0.5 s chunks and drops the chunks during which
other processes used more than --max-other cores, interleaves the repeats of
all configurations and reports the median of --repeats.
"""

import argparse
import ctypes
import ctypes.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 64
NUM_CLASSES = 10
LJ_EPSILON = 0.1
LJ_SIGMA = 0.5
LJ_N = 6
LJ_CLAMP_MAX = 5.0


# --------------------------------------------------------------------------
# LJ loss: the paper's listing (appendix E.2), unchanged.
# --------------------------------------------------------------------------
def lj_loss(features, sigma=1.0, n=6, clamp_max=5.0):
    features_normalized = F.normalize(features, dim=2)
    cosine_sim = torch.matmul(features_normalized,
                              features_normalized.transpose(1, 2))
    cosine_dist = 1 - cosine_sim
    diag_indices = torch.arange(cosine_dist.size(1),
                                device=cosine_dist.device)
    cosine_dist[:, diag_indices, diag_indices] = sigma
    cosine_dist = torch.clamp(cosine_dist, min=1e-3)
    term1 = (sigma / cosine_dist) ** (2 * n)
    term2 = ((sigma / cosine_dist) ** n)
    lj_potential = (term1 - term2)
    lj_potential = torch.clamp(lj_potential, max=clamp_max)
    lj_loss = torch.mean(lj_potential)
    return lj_loss


class LJLoss(nn.Module):
    def __init__(self, epsilon=LJ_EPSILON, sigma=LJ_SIGMA, n=LJ_N,
                 clamp_max=LJ_CLAMP_MAX):
        super().__init__()
        self.epsilon, self.sigma, self.n, self.clamp_max = \
            epsilon, sigma, n, clamp_max

    def forward(self, feat):
        return self.epsilon * lj_loss(feat, sigma=self.sigma, n=self.n,
                                      clamp_max=self.clamp_max)


# --------------------------------------------------------------------------
# Models. forward(x) -> (logits, lj_features)
# --------------------------------------------------------------------------
class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, NUM_CLASSES)

    def forward(self, x):
        h = torch.flatten(x, 1)
        h = F.relu(self.fc1(h))
        h = F.relu(self.fc2(h))           # (B,128): LJ attach point
        # BATCH particles: the whole batch is one "sequence" of B particles.
        return self.fc3(h), h.view(1, h.shape[0], h.shape[1])


class HandAttention(nn.Module):
    """Multi-head self-attention written out: qkv Linear, matmul, softmax."""

    def __init__(self, dim=64, heads=4):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)           # (3,B,H,T,hd)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.matmul(q, k.transpose(-2, -1)) * self.scale
        att = torch.softmax(att, dim=-1)
        y = torch.matmul(att, v)                   # (B,H,T,hd)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.proj(y)


class MHAAttention(nn.Module):
    """Same parameters (in_proj 64->192 with bias, out_proj 64->64) via
    nn.MultiheadAttention (PyTorch's built-in/SDPA path)."""

    def __init__(self, dim=64, heads=4):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, bias=True,
                                         batch_first=True)

    def forward(self, x):
        return self.mha(x, x, x, need_weights=False)[0]


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_dim, attn_cls):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = attn_cls(dim, heads)
        self.ln2 = nn.LayerNorm(dim, eps=1e-5)
        self.fc1 = nn.Linear(dim, mlp_dim)
        self.fc2 = nn.Linear(mlp_dim, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))  # exact (erf) GELU
        return x


class ViT(nn.Module):
    def __init__(self, attn_cls=HandAttention, dim=64, depth=4, heads=4,
                 mlp_dim=256, patch=4):
        super().__init__()
        self.patch = patch
        self.grid = 28 // patch                       # 7
        n_patches = self.grid * self.grid             # 49
        self.patch_embed = nn.Linear(patch * patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, dim))
        nn.init.normal_(self.cls_token, std=0.02)
        nn.init.normal_(self.pos_embed, std=0.02)
        self.blocks = nn.ModuleList(
            [Block(dim, heads, mlp_dim, attn_cls) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, NUM_CLASSES)

    def forward(self, x):
        B = x.shape[0]
        g, p = self.grid, self.patch
        x = x.reshape(B, 1, g, p, g, p).permute(0, 2, 4, 1, 3, 5) \
             .reshape(B, g * g, p * p)                # (B,49,16)
        x = self.patch_embed(x)                       # (B,49,64)
        x = torch.cat([self.cls_token.expand(B, -1, -1), x], dim=1)
        x = x + self.pos_embed                        # (B,50,64)
        for blk in self.blocks:
            x = blk(x)
        feats = self.norm(x)                          # (B,50,64): LJ point
        return self.head(feats[:, 0]), feats          # TOKEN particles


MODELS = {
    "mlp": ("mlp-fmnist", lambda: MLP()),
    "vit": ("vit-tiny-fmnist (hand attention)", lambda: ViT(HandAttention)),
    "vit-mha": ("vit-tiny-fmnist (nn.MultiheadAttention)",
                lambda: ViT(MHAAttention)),
}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def check_mha_equivalence():
    """Copy the hand-attention ViT's weights into the MHA variant and check
    that both compute the same function (so the two variants are the same
    model)."""
    torch.manual_seed(0)
    a, b = ViT(HandAttention), ViT(MHAAttention)
    sd = {}
    for k, v in a.state_dict().items():
        k = k.replace("attn.qkv.weight", "attn.mha.in_proj_weight") \
             .replace("attn.qkv.bias", "attn.mha.in_proj_bias") \
             .replace("attn.proj.", "attn.mha.out_proj.")
        sd[k] = v
    b.load_state_dict(sd)
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        la, fa = a(x)
        lb, fb = b(x)
    return max((la - lb).abs().max().item(), (fa - fb).abs().max().item())


# --------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------
def find_openblas():
    for line in open("/proc/self/maps"):
        path = line.split()[-1]
        if "openblas" in os.path.basename(path) and ".so" in path:
            try:
                lib = ctypes.CDLL(path)
                lib.openblas_get_num_threads  # noqa: B018 (probe)
                return path, lib
            except (OSError, AttributeError):
                pass
    return None, None


def blas_info():
    # Force the BLAS to be loaded, then look at what the process mapped.
    a = torch.randn(64, 64)
    (a @ a).sum().item()
    libs = sorted({l.split()[-1] for l in open("/proc/self/maps")
                   if any(s in l for s in ("blas", "lapack", "mkl"))})
    path, lib = find_openblas()
    info = {"mapped_libs": libs, "openblas_path": path}
    if lib is not None:
        lib.openblas_get_config.restype = ctypes.c_char_p
        lib.openblas_get_corename.restype = ctypes.c_char_p
        info["openblas_config"] = lib.openblas_get_config().decode()
        info["openblas_corename"] = lib.openblas_get_corename().decode()
        info["openblas_default_threads"] = lib.openblas_get_num_threads()
    cfg = torch.__config__.show()
    info["torch_build_blas_info"] = next(
        (s.strip() for s in cfg.replace(",", "\n").splitlines()
         if "BLAS_INFO" in s and "LAPACK" not in s), None)
    return info, lib


def set_threads(threads, blas_threads, ob_lib):
    torch.set_num_threads(threads)
    if ob_lib is not None:
        ob_lib.openblas_set_num_threads(blas_threads)
        return ob_lib.openblas_get_num_threads()
    return None


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except Exception:  # noqa: BLE001
        return "load average: %.2f, %.2f, %.2f" % os.getloadavg()


def cpu_busy_seconds():
    """Busy CPU seconds of the whole machine so far (all processes)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / os.sysconf("SC_CLK_TCK")


def wait_for_idle(max_wait, threshold=0.25, window=0.5):
    """Wait (at most max_wait s) until other processes use < threshold
    cores over a window.  Returns (seconds waited, last foreign load)."""
    t0 = time.perf_counter()
    while True:
        b0, c0, w0 = cpu_busy_seconds(), time.process_time(), \
            time.perf_counter()
        time.sleep(window)
        dw = time.perf_counter() - w0
        foreign = (cpu_busy_seconds() - b0 - (time.process_time() - c0)) / dw
        waited = time.perf_counter() - t0
        if foreign < threshold or waited >= max_wait:
            return waited, foreign
        time.sleep(0.5)


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------
class Config:
    def __init__(self, key, use_lj, foreach, split, seed=0):
        self.key, self.use_lj, self.foreach = key, use_lj, foreach
        self.split = split                  # (torch threads, OpenBLAS threads)
        torch.manual_seed(seed)
        self.model = MODELS[key][1]()
        self.model.train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3,
                                     betas=(0.9, 0.999), weight_decay=5e-5,
                                     foreach=foreach)
        self.lj = LJLoss()
        g = torch.Generator().manual_seed(seed + 1)
        # A small pool of in-memory batches, cycled.
        self.xs = [torch.randn(BATCH, 1, 28, 28, generator=g)
                   for _ in range(8)]
        self.ys = [torch.randint(0, NUM_CLASSES, (BATCH,), generator=g,
                                 dtype=torch.int64) for _ in range(8)]
        self.i = 0
        self.last_loss = None

    def step(self):
        x, y = self.xs[self.i % 8], self.ys[self.i % 8]
        self.i += 1
        self.opt.zero_grad(set_to_none=True)
        logits, feats = self.model(x)
        loss = F.cross_entropy(logits, y)
        if self.use_lj:
            loss = loss + self.lj(feats)
        loss.backward()
        self.opt.step()
        return loss

    def measure(self, warmup, steps, min_time, max_other=None, chunk_s=0.5,
                max_wall=300.0):
        """Time training steps in chunks of ~chunk_s seconds.  For each chunk
        the CPU time used by *other* processes is measured (/proc/stat busy
        time minus this process's CPU time); chunks during which others used
        more than max_other cores are discarded.  Stops when the kept chunks
        hold >= steps steps and >= min_time seconds (or after max_wall s, then
        keeping the least disturbed chunks)."""
        for _ in range(warmup):
            self.step()
        # Steps per chunk from a short probe.
        t0 = time.perf_counter()
        self.step()
        per = max(1, int(chunk_s / max(time.perf_counter() - t0, 1e-6)))
        kept, dropped = [], []
        idle_wait = 0.0
        disturbed = False
        start = time.perf_counter()
        loss = None
        while True:
            b0 = cpu_busy_seconds()
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(per):
                loss = self.step()
            dt = time.perf_counter() - t0
            cpu = time.process_time() - c0
            foreign = max(0.0, (cpu_busy_seconds() - b0 - cpu) / dt)
            ch = (per, dt, cpu, foreign)
            if max_other is None or foreign <= max_other:
                kept.append(ch)
            else:
                dropped.append(ch)
                # Don't burn CPU next to the other work: sleep until it is
                # gone (or time is up), then re-warm the caches.
                left = max_wall - (time.perf_counter() - start)
                if left > 0:
                    waited_s, _ = wait_for_idle(left, threshold=max_other)
                    idle_wait += waited_s
                for _ in range(min(3, per)):
                    self.step()
            n = sum(c[0] for c in kept)
            t = sum(c[1] for c in kept)
            if n >= steps and t >= min_time:
                break
            if time.perf_counter() - start > max_wall:
                # Give up waiting for quiet: fill up with the least
                # disturbed chunks (the result is flagged as disturbed).
                disturbed = True
                for c in sorted(dropped, key=lambda c: c[3]):
                    if n >= steps and t >= min_time:
                        break
                    kept.append(c)
                    n, t = n + c[0], t + c[1]
                break
        self.last_loss = loss.item()
        if not math.isfinite(self.last_loss):
            raise RuntimeError(f"non-finite loss in {self.key}")
        n = sum(c[0] for c in kept)
        dt = sum(c[1] for c in kept)
        cpu = sum(c[2] for c in kept)
        foreign = sum(c[3] * c[1] for c in kept) / dt
        return {"steps": n, "seconds": dt, "samples_per_s": n * BATCH / dt,
                "ms_per_step": 1e3 * dt / n, "cpu_util": cpu / dt,
                "foreign_cores": foreign, "chunks_kept": len(kept),
                "chunks_dropped": len(dropped), "disturbed": disturbed,
                "idle_wait_s": idle_wait,
                "wall_s": time.perf_counter() - start}


def thread_splits(threads, blas_threads):
    """(torch intra-op threads, OpenBLAS threads) pairs to measure for a
    budget of `threads` cores.  Debian's torch runs its own OpenMP pool *and*
    calls the pthread OpenBLAS, which has its own pool; letting both use all
    cores oversubscribes the CPU (spinning threads fight each other) and is
    several times slower, so by default each pool gets the cores in turn and
    the faster split counts."""
    if blas_threads is not None:
        return [(threads, blas_threads)]
    if threads == 1:
        return [(1, 1)]
    return [(threads, 1), (1, threads)]


def max_other(args, split):
    """Cores other processes may use during a kept chunk.  Default: 0.15
    cores when this run uses every core; with fewer threads, the cores it
    leaves free (e.g. 1.0 for a 1-thread run on 2 cores)."""
    if args.max_other is not None:
        return None if args.max_other < 0 else args.max_other
    free = (os.cpu_count() or 1) - max(split)
    return max(0.15, float(free))


def run(args):
    keys = {"mlp": ["mlp"], "vit": ["vit", "vit-mha"],
            "all": ["mlp", "vit", "vit-mha"]}[args.model]
    t_start = time.perf_counter()
    binfo, ob_lib = blas_info()
    env = {k: os.environ.get(k) for k in
           ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOTO_NUM_THREADS",
            "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    default_torch_threads = torch.get_num_threads()
    foreach_opts = {"both": [True, False], "true": [True],
                    "false": [False]}[args.foreach]

    meta = {
        "torch_version": torch.__version__,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)),
        "blas": binfo,
        "env": env,
        "torch_default_threads": default_torch_threads,
        "batch": BATCH,
        "lj": {"epsilon": LJ_EPSILON, "sigma": LJ_SIGMA, "n": LJ_N,
               "clamp_max": LJ_CLAMP_MAX},
        "optimizer": "AdamW(lr=1e-3, betas=(0.9,0.999), weight_decay=5e-5)",
        "warmup": args.warmup, "min_steps": args.steps,
        "min_time_s": args.min_time, "repeats": args.repeats,
        "params": {k: n_params(MODELS[k][1]()) for k in MODELS},
        "mha_vs_hand_max_abs_diff": check_mha_equivalence(),
    }

    print(f"torch {torch.__version__} ({sys.executable}), "
          f"BLAS: {binfo.get('openblas_config') or binfo['mapped_libs']}"
          f" core={binfo.get('openblas_corename')}")
    print("env: " + ", ".join(f"{k}={v}" for k, v in env.items()
                              if v is not None))
    print("params: " + ", ".join(f"{k}={v:,}" for k, v in
                                 meta["params"].items()))
    print(f"vit vs vit-mha (same weights) max |diff| = "
          f"{meta['mha_vs_hand_max_abs_diff']:.2e}")

    all_results = []
    for threads in args.threads:
        splits = thread_splits(threads, args.blas_threads)
        load_before = uptime()
        print(f"\n== {threads} thread(s); (torch, OpenBLAS) thread splits "
              f"{splits} | {load_before}", flush=True)
        configs = [Config(k, lj, fe, sp) for k in keys for lj in (False, True)
                   for sp in splits for fe in foreach_opts]
        reps = {id(c): [] for c in configs}
        # Interleave repeats so that background load drifts hit every
        # configuration alike.
        for r in range(args.repeats):
            for c in configs:
                ob = set_threads(c.split[0], c.split[1], ob_lib)
                waited, _ = (wait_for_idle(args.wait_idle)
                             if args.wait_idle > 0 else (0.0, None))
                m = c.measure(args.warmup, args.steps, args.min_time,
                              max_other=max_other(args, c.split),
                              chunk_s=args.chunk, max_wall=args.max_wall)
                m["waited_for_idle_s"] = waited
                m["load1"] = os.getloadavg()[0]
                m["openblas_threads"] = ob
                reps[id(c)].append(m)
                if args.verbose:
                    print(f"  rep{r} {c.key:8s} lj={int(c.use_lj)} "
                          f"foreach={int(c.foreach)} split={c.split}: "
                          f"{m['samples_per_s']:9.1f} samples/s "
                          f"({m['steps']} steps, {m['seconds']:.1f}s kept "
                          f"of {m['wall_s']:.1f}s, {m['chunks_dropped']} "
                          f"chunks dropped, "
                          f"cpu {m['cpu_util']:.2f}, other procs "
                          f"{m['foreign_cores']:.2f} cores, "
                          f"load1 {m['load1']:.2f}, waited "
                          f"{waited:.0f}s)", flush=True)
        load_after = uptime()
        rows = []
        for c in configs:
            sps = [m["samples_per_s"] for m in reps[id(c)]]
            rows.append({
                "threads": threads, "torch_threads": c.split[0],
                "blas_threads": c.split[1], "model": c.key,
                "model_name": MODELS[c.key][0], "lj": c.use_lj,
                "foreach": c.foreach,
                "samples_per_s_median": statistics.median(sps),
                "samples_per_s_reps": sps,
                "ms_per_step_median": 1e3 * BATCH / statistics.median(sps),
                "cpu_util_median": statistics.median(
                    m["cpu_util"] for m in reps[id(c)]),
                "samples_per_s_max": max(sps),
                "load1_reps": [m["load1"] for m in reps[id(c)]],
                "foreign_cores_reps": [m["foreign_cores"]
                                       for m in reps[id(c)]],
                "waited_for_idle_s_reps": [m["waited_for_idle_s"]
                                           for m in reps[id(c)]],
                "disturbed_reps": [m["disturbed"] for m in reps[id(c)]],
                "chunks_kept_reps": [m["chunks_kept"] for m in reps[id(c)]],
                "chunks_dropped_reps": [m["chunks_dropped"]
                                        for m in reps[id(c)]],
                "steps_per_rep": [m["steps"] for m in reps[id(c)]],
                "seconds_per_rep": [m["seconds"] for m in reps[id(c)]],
                "final_loss": c.last_loss,
            })
        # Best (foreach, split) per (model, lj) and the LJ overhead.
        summary = []
        for k in keys:
            best = {}
            for lj in (False, True):
                cand = [r for r in rows if r["model"] == k and r["lj"] == lj]
                best[lj] = max(cand, key=lambda r: r["samples_per_s_median"])
            overhead = 100.0 * (best[False]["samples_per_s_median"]
                                / best[True]["samples_per_s_median"] - 1.0)
            summary.append({
                "threads": threads, "model": k, "model_name": MODELS[k][0],
                "no_lj_samples_per_s": best[False]["samples_per_s_median"],
                "no_lj_ms_per_step": best[False]["ms_per_step_median"],
                "no_lj_foreach": best[False]["foreach"],
                "no_lj_split": [best[False]["torch_threads"],
                                best[False]["blas_threads"]],
                "lj_samples_per_s": best[True]["samples_per_s_median"],
                "lj_ms_per_step": best[True]["ms_per_step_median"],
                "lj_foreach": best[True]["foreach"],
                "lj_split": [best[True]["torch_threads"],
                             best[True]["blas_threads"]],
                "lj_overhead_pct": overhead,
            })

        print(f"{'model':8s} {'LJ':>3s} {'foreach':>7s} {'torch/blas':>10s} "
              f"{'samples/s':>10s} {'ms/step':>8s} {'cpu':>5s} {'other':>5s}"
              f"  reps (samples/s)")
        for r in rows:
            print(f"{r['model']:8s} {('yes' if r['lj'] else 'no'):>3s} "
                  f"{str(r['foreach']):>7s} "
                  f"{r['torch_threads']:>5d}/{r['blas_threads']:<4d} "
                  f"{r['samples_per_s_median']:10.1f} "
                  f"{r['ms_per_step_median']:8.2f} "
                  f"{r['cpu_util_median']:5.2f} "
                  f"{max(r['foreign_cores_reps']):5.2f}  "
                  + " ".join(f"{v:.0f}" + ("*" if d else "") for v, d in
                             zip(r["samples_per_s_reps"],
                                 r["disturbed_reps"])))
        if any(any(r["disturbed_reps"]) for r in rows):
            print("  * = no quiet machine within --max-wall: this repeat "
                  "ran next to other work and is not reliable")
        print(f"-- best (foreach, torch/blas split), median of "
              f"{args.repeats} ({threads} thread(s)):")
        print(f"{'model':8s} {'no-LJ s/s':>10s} {'LJ s/s':>10s} "
              f"{'LJ overhead':>12s}")
        for s in summary:
            print(f"{s['model']:8s} {s['no_lj_samples_per_s']:10.1f} "
                  f"{s['lj_samples_per_s']:10.1f} "
                  f"{s['lj_overhead_pct']:11.1f}%")
        print(f"load before: {load_before}\nload after:  {load_after}")
        all_results.append({"threads": threads, "splits": splits,
                            "load_before": load_before,
                            "load_after": load_after,
                            "rows": rows, "summary": summary})

    meta["wall_s"] = time.perf_counter() - t_start
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": all_results}, f, indent=2)
        print(f"\nwrote {args.json}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["mlp", "vit", "all"], default="all",
                    help="'vit' measures both the hand-attention and the "
                         "nn.MultiheadAttention variants")
    ap.add_argument("--threads", default="2",
                    help="torch threads; comma list to sweep, e.g. 2,1")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="force this OpenBLAS thread count (torch threads = "
                         "--threads); default: try the splits (T,1) and "
                         "(1,T) and report the faster")
    ap.add_argument("--steps", type=int, default=100,
                    help="minimum timed steps per repeat")
    ap.add_argument("--min-time", type=float, default=3.0,
                    help="minimum timed seconds per repeat")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--foreach", choices=["both", "true", "false"],
                    default="both")
    ap.add_argument("--wait-idle", type=float, default=0.0,
                    help="before each timed run wait up to this many seconds "
                         "for other processes to leave the CPU (0: off)")
    ap.add_argument("--max-other", type=float, default=None,
                    help="drop timing chunks during which other processes "
                         "used more than this many cores (<0: keep all; "
                         "default 0.15 when all cores are used, else the "
                         "number of free cores)")
    ap.add_argument("--chunk", type=float, default=0.5,
                    help="timing chunk length in seconds")
    ap.add_argument("--max-wall", type=float, default=300.0,
                    help="give up waiting for undisturbed chunks after this "
                         "many seconds per timed run")
    ap.add_argument("--json", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.threads = [int(t) for t in str(args.threads).split(",")]
    run(args)


if __name__ == "__main__":
    main()
