#!/usr/bin/python3
"""The PyTorch reference of `deno task bench`: the same train, score, decode and matmul workloads,
same shapes, loss, optimizer and thread counts, in eager PyTorch on the CPU.

Install with bench/torch/setup.sh (Debian's python3-torch + libopenblas0-pthread; PyPI is not
reachable here). Debian has neither transformers nor peft, so GPT-2 (HF weight layout, loaded from
model.safetensors with numpy) and LoRA are written out below.

Inputs (token batches, prompts, the random 124M model) come from `deno run -A bench/inputs.ts`
(run automatically when missing), so both engines see the same tokens and weights.

Usage: /usr/bin/python3 bench/torch/bench.py [--quick] [--only w1,w2] [--threads 1,2] [--out DIR]
Writes DIR/torch-latest.json and a dated copy (default DIR: bench/results), same schema as ours.

Every (workload, threads) runs in its own process: OpenBLAS reads its thread count from the
environment at load time, and ru_maxrss is per process.
"""

import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "@@bench-result@@ "
WORKLOADS = ["matmul-peak", "train-tiny", "decode-tiny", "score-small", "decode-small", "train-small",
             "train-0.5b"]
TIMEOUT_S = {"matmul-peak": 150, "train-tiny": 240, "decode-tiny": 150, "score-small": 300,
             "decode-small": 300, "train-small": 600, "train-0.5b": 3600}


def cache_dir():
    env = os.environ.get("EXO_BENCH_CACHE")
    if env:
        return env
    return os.path.join(os.environ.get("TMPDIR", "/tmp"), "exo-tune-bench")


def shared_inputs():
    path = os.path.join(cache_dir(), "inputs.json")
    if not os.path.exists(path):
        deno = os.path.join(ROOT, "node_modules", ".bin", "deno")
        subprocess.run([deno, "run", "-A", "bench/inputs.ts"], cwd=ROOT, check=True)
    with open(path) as f:
        return json.load(f)


# ----------------------------------------------------------------------------------------- model

def load_safetensors(path):
    """name -> float32 numpy array (F32 as is, BF16 upcast exactly: PyTorch trains in float32 here)."""
    import numpy as np
    with open(path, "rb") as f:
        raw = bytearray(f.read())  # writable, so torch.from_numpy shares it without a copy
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(bytes(raw[8:8 + n]))
    base = 8 + n
    data = np.frombuffer(raw, dtype=np.uint8)
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        if t["dtype"] == "F32":
            out[name] = np.frombuffer(data[base + a:base + b], dtype=np.float32).reshape(t["shape"])
        elif t["dtype"] == "BF16":
            bits = np.frombuffer(data[base + a:base + b], dtype=np.uint16).astype(np.uint32) << 16
            out[name] = bits.view(np.float32).reshape(t["shape"])
        else:
            raise ValueError(f"{path}: {name} is {t['dtype']}; this loader reads F32 and BF16 only")
    return out


class Gpt2:
    """GPT2LMHeadModel's forward (pre-LN blocks, fused c_attn, gelu_new, tied head) with optional
    LoRA on named modules: y = x W + b + (alpha / r) (x A^T) B^T, A [r, in], B [out, r]."""

    def __init__(self, model_dir, torch):
        self.t = torch
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        self.layers, self.hidden, self.heads = c["n_layer"], c["n_embd"], c["n_head"]
        self.eps = c.get("layer_norm_epsilon", 1e-5)
        self.positions = c["n_positions"]
        w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.w = {k.removeprefix("transformer."): torch.from_numpy(v) for k, v in w.items()}
        self.vocab = self.w["wte.weight"].shape[0]
        self.lora = {}
        self.scale = 0.0

    def add_lora(self, r, alpha, targets, seed=0):
        t = self.t
        g = t.Generator().manual_seed(seed)
        for i in range(self.layers):
            for mod in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
                if mod.split(".")[-1] not in targets:
                    continue
                inf, outf = self.w[f"h.{i}.{mod}.weight"].shape
                bound = 1 / math.sqrt(inf)  # kaiming_uniform(a=sqrt(5)) as PEFT initializes A
                a = (t.rand(r, inf, generator=g) * 2 - 1) * bound
                self.lora[f"h.{i}.{mod}"] = (a.requires_grad_(), t.zeros(outf, r, requires_grad=True))
        self.scale = alpha / r
        return [p for ab in self.lora.values() for p in ab]

    def linear(self, x, name, use_lora):
        y = self.t.addmm(self.w[f"{name}.bias"], x.reshape(-1, x.shape[-1]), self.w[f"{name}.weight"])
        y = y.reshape(*x.shape[:-1], -1)
        ab = self.lora.get(name) if use_lora else None
        if ab is not None:
            y = y + ((x @ ab[0].t()) * self.scale) @ ab[1].t()
        return y

    def forward(self, ids, attn_mask=None, use_lora=True, past=None, last_only=False):
        """Logits [B, T, V] (or [B, 1, V]) and the new cache (list of (k, v) per layer)."""
        t, F = self.t, self.t.nn.functional
        B, T = ids.shape
        P = 0 if past is None else past[0][0].shape[2]
        pos = t.arange(P, P + T)
        h = self.w["wte.weight"][ids] + self.w["wpe.weight"][pos]
        # Additive bias: causal, plus padding (mask over past + new keys), as our graph builds it.
        causal = t.arange(P + T)[None, :] > pos[:, None]
        bias = t.zeros(T, P + T).masked_fill(causal, -1e9)[None, None]
        if attn_mask is not None:
            bias = bias + ((attn_mask.float() - 1) * 1e9)[:, None, None, :]
        H, D = self.heads, self.hidden // self.heads
        present = []
        for i in range(self.layers):
            p = f"h.{i}"
            a = F.layer_norm(h, (self.hidden,), self.w[f"{p}.ln_1.weight"], self.w[f"{p}.ln_1.bias"], self.eps)
            q, k, v = self.linear(a, f"{p}.attn.c_attn", use_lora).split(self.hidden, dim=-1)
            q = q.reshape(B, T, H, D).transpose(1, 2) / math.sqrt(D)
            k = k.reshape(B, T, H, D).transpose(1, 2)
            v = v.reshape(B, T, H, D).transpose(1, 2)
            if past is not None:
                k = t.cat([past[i][0], k], dim=2)
                v = t.cat([past[i][1], v], dim=2)
            present.append((k, v))
            att = t.softmax(q @ k.transpose(-1, -2) + bias, dim=-1) @ v
            o = self.linear(att.transpose(1, 2).reshape(B, T, self.hidden), f"{p}.attn.c_proj", use_lora)
            h = h + o
            m = F.layer_norm(h, (self.hidden,), self.w[f"{p}.ln_2.weight"], self.w[f"{p}.ln_2.bias"], self.eps)
            fc = F.gelu(self.linear(m, f"{p}.mlp.c_fc", use_lora), approximate="tanh")
            h = h + self.linear(fc, f"{p}.mlp.c_proj", use_lora)
        h = F.layer_norm(h, (self.hidden,), self.w["ln_f.weight"], self.w["ln_f.bias"], self.eps)
        if last_only:
            h = h[:, -1:]
        return h @ self.w["wte.weight"].t(), present


class Qwen2:
    """Qwen2ForCausalLM's forward (RMSNorm, RoPE, grouped-query attention with q/k/v biases, SwiGLU,
    tied head) with LoRA on every projection, for train-0.5b. Weights upcast to float32."""

    MODULES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")

    def __init__(self, model_dir, torch):
        self.t = torch
        with open(os.path.join(model_dir, "config.json")) as f:
            c = json.load(f)
        self.layers, self.hidden = c["num_hidden_layers"], c["hidden_size"]
        self.heads, self.kv_heads = c["num_attention_heads"], c["num_key_value_heads"]
        self.eps, self.positions = c["rms_norm_eps"], c["max_position_embeddings"]
        d = self.hidden // self.heads
        self.inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
        self.w = {k.removeprefix("model."): torch.from_numpy(v) for k, v in w.items()}
        self.lora, self.scale = {}, 0.0

    def add_lora(self, r, alpha, seed=0):
        t = self.t
        g = t.Generator().manual_seed(seed)
        for i in range(self.layers):
            for mod in self.MODULES:
                outf, inf = self.w[f"layers.{i}.{mod}.weight"].shape
                a = (t.rand(r, inf, generator=g) * 2 - 1) / math.sqrt(inf)
                self.lora[f"layers.{i}.{mod}"] = (a.requires_grad_(), t.zeros(outf, r, requires_grad=True))
        self.scale = alpha / r
        return [p for ab in self.lora.values() for p in ab]

    def linear(self, x, name, use_lora):
        y = self.t.nn.functional.linear(x, self.w[f"{name}.weight"], self.w.get(f"{name}.bias"))
        ab = self.lora.get(name) if use_lora else None
        if ab is not None:
            y = y + ((x @ ab[0].t()) * self.scale) @ ab[1].t()
        return y

    def rms(self, x, name):
        return x * self.t.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w[name]

    def forward(self, ids, attn_mask=None, use_lora=True):
        t = self.t
        B, T = ids.shape
        H, KV, D = self.heads, self.kv_heads, self.hidden // self.heads
        ang = t.arange(T, dtype=t.float32)[:, None] * self.inv_freq[None]
        cos, sin = t.cat([ang.cos()] * 2, -1), t.cat([ang.sin()] * 2, -1)

        def rope(x):
            x1, x2 = x[..., :D // 2], x[..., D // 2:]
            return x * cos + t.cat([-x2, x1], -1) * sin

        causal = t.arange(T)[None, :] > t.arange(T)[:, None]
        bias = t.zeros(T, T).masked_fill(causal, -1e9)[None, None]
        if attn_mask is not None:
            bias = bias + ((attn_mask.float() - 1) * 1e9)[:, None, None, :]
        h = self.w["embed_tokens.weight"][ids]
        for i in range(self.layers):
            p = f"layers.{i}"
            a = self.rms(h, f"{p}.input_layernorm.weight")
            q = rope(self.linear(a, f"{p}.self_attn.q_proj", use_lora).reshape(B, T, H, D).transpose(1, 2))
            k = rope(self.linear(a, f"{p}.self_attn.k_proj", use_lora).reshape(B, T, KV, D).transpose(1, 2))
            v = self.linear(a, f"{p}.self_attn.v_proj", use_lora).reshape(B, T, KV, D).transpose(1, 2)
            k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
            att = t.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + bias, dim=-1) @ v
            h = h + self.linear(att.transpose(1, 2).reshape(B, T, H * D), f"{p}.self_attn.o_proj", use_lora)
            m = self.rms(h, f"{p}.post_attention_layernorm.weight")
            gate = self.linear(m, f"{p}.mlp.gate_proj", use_lora)
            up = self.linear(m, f"{p}.mlp.up_proj", use_lora)
            h = h + self.linear(t.nn.functional.silu(gate) * up, f"{p}.mlp.down_proj", use_lora)
        h = self.rms(h, "norm.weight")
        return h @ self.w["embed_tokens.weight"].t(), None


def qwen_inputs():
    """The train-0.5b model (generated by bench/train_05b.ts on first use) and its batch."""
    deno = os.path.join(ROOT, "node_modules", ".bin", "deno")
    out = subprocess.run([deno, "run", "-A", "bench/train_05b.ts"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def pad_pairs(batch, max_len, torch):
    """Our padBatch: chosen rows then rejected rows, right-padded to a multiple of 8."""
    seqs = [(p["prompt"], p["chosen"]) for p in batch] + [(p["prompt"], p["rejected"]) for p in batch]
    lens = [len(a) + len(b) for a, b in seqs]
    T = min(math.ceil(max(lens) / 8) * 8, max_len)
    rows = len(seqs)
    ids = torch.zeros(rows, T, dtype=torch.long)
    att = torch.zeros(rows, T, dtype=torch.long)
    tgt = torch.zeros(rows, T, dtype=torch.long)
    cm = torch.zeros(rows, T)
    for r, (pr, co) in enumerate(seqs):
        full = pr + co
        n = len(full)
        ids[r, :n] = torch.tensor(full)
        att[r, :n] = 1
        tgt[r, :n - 1] = torch.tensor(full[1:])
        cm[r, max(0, len(pr) - 1):n - 1] = 1
    return ids, att, tgt, cm, sum(lens)


def seq_logps(logits, tgt, cm, torch):
    lp = torch.log_softmax(logits, dim=-1).gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    return (lp * cm).sum(-1)


def exo_pref_loss(u, beta, eps, torch):
    """EXO-pref: KL(softmax(beta [u_w, u_l]) || (1 - eps, eps)), mean over pairs."""
    b = u.shape[0] // 2
    z = beta * torch.stack([u[:b], u[b:]], dim=-1)
    logpf = torch.log_softmax(z, dim=-1)
    logpr = torch.log(torch.tensor([1 - eps, eps]))
    return (logpf.exp() * (logpf - logpr)).sum(-1).mean()


# ------------------------------------------------------------------------------------- workloads

def w_matmul(torch, quick):
    shapes = [("512^3", 512, 512, 512), ("1024^3", 1024, 1024, 1024), ("qkv_512x768x2304", 512, 768, 2304)]
    if not quick:
        shapes += [("2048^3", 2048, 2048, 2048), ("lmhead_512x768x50257", 512, 768, 50257)]
    out, best = [], 0.0
    for label, m, k, n in shapes:
        a, b = torch.rand(m, k) - 0.5, torch.rand(k, n) - 0.5
        a @ b
        best_s, reps, start = float("inf"), 0, time.perf_counter()
        while reps < 2 or (time.perf_counter() - start < 1.5 and reps < 50):
            t0 = time.perf_counter()
            a @ b
            best_s = min(best_s, time.perf_counter() - t0)
            reps += 1
        g = 2 * m * n * k / best_s / 1e9
        best = max(best, g)
        out.append(("gflops_" + label, g, "GFLOP/s"))
        log(f"matmul {label}: {best_s * 1000:.1f} ms, {g:.1f} GFLOP/s")
    return [("peak_gflops", best, "GFLOP/s")] + out


def w_train(torch, quick, size, inputs):
    if size == "0.5b":
        q = qwen_inputs()
        model = Qwen2(q["modelDir"], torch)
        params = model.add_lora(8, 16)
        batches_all, warmup, measured = [q["batch"]], 0, 1
    else:
        model = Gpt2(inputs["tinyModel" if size == "tiny" else "smallModel"], torch)
        targets = ["c_attn", "c_proj", "c_fc"] if size == "tiny" else ["c_attn"]
        params = model.add_lora(8, 16, targets)
        batches_all = inputs["tinyBatches" if size == "tiny" else "smallBatches"]
        warmup = 2 if size == "tiny" else 1
        measured = (4 if quick else 12) if size == "tiny" else (1 if quick else 3)
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8)
    tokens = seconds = ref_s = cpu = 0.0
    steps, step_ms, losses = 0, [], []
    for i in range(warmup + measured):
        ids, att, tgt, cm, ntok = pad_pairs(batches_all[i % len(batches_all)], model.positions, torch)
        # Reference log-probs: base model, no grad (our trainer caches these; TRL recomputes them).
        t0 = time.perf_counter()
        with torch.no_grad():
            ref = seq_logps(model.forward(ids, att, use_lora=False)[0], tgt, cm, torch)
        rdt = time.perf_counter() - t0
        # The step our fused graph does: policy forward + backward, clip 1, AdamW.
        c0 = time.process_time()
        t0 = time.perf_counter()
        pol = seq_logps(model.forward(ids, att, use_lora=True)[0], tgt, cm, torch)
        loss = exo_pref_loss(pol - ref, 0.1, 1e-3, torch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        dt = time.perf_counter() - t0
        cdt = time.process_time() - c0
        losses.append(loss.item())
        log(f"train-{size} step {i}{' (warm-up)' if i < warmup else ''}: {dt * 1000:.0f} ms, loss {losses[-1]:.5f}")
        if i < warmup:
            continue
        tokens += ntok
        seconds += dt
        cpu += cdt
        ref_s += rdt
        step_ms.append(dt * 1000)
        steps += 1
    return [
        ("tokens_per_s", tokens / seconds, "tokens/s"),
        # Tokens per CPU-second of the process (all its threads): on a shared machine this moves less
        # than wall time with the other load; at 1 thread it is the throughput on a core of one's own.
        ("tokens_per_cpu_s", tokens / cpu, "tokens/s"),
        ("step_ms", sum(step_ms) / len(step_ms), "ms"),
        ("ref_ms", ref_s / steps * 1000, "ms"),
        ("tokens_per_s_with_ref", tokens / (seconds + ref_s), "tokens/s"),
        ("steps_measured", steps, "steps"),
    ]


def w_score(torch, quick, inputs):
    model = Gpt2(inputs["smallModel"], torch)
    reps = 1 if quick else 3
    tokens = seconds = cpu = 0.0
    for i in range(reps + 1):
        batch = inputs["smallBatches"][i % len(inputs["smallBatches"])]
        ids, att, tgt, cm, ntok = pad_pairs(batch, model.positions, torch)
        ids, att, tgt, cm = ids[:4], att[:4], tgt[:4], cm[:4]
        c0 = time.process_time()
        t0 = time.perf_counter()
        with torch.no_grad():
            seq_logps(model.forward(ids, att, use_lora=False)[0], tgt, cm, torch)
        dt = time.perf_counter() - t0
        cdt = time.process_time() - c0
        log(f"score-small run {i}{' (warm-up)' if i == 0 else ''}: {dt * 1000:.0f} ms")
        if i == 0:
            continue
        tokens += int(att.sum())
        seconds += dt
        cpu += cdt
    return [("tokens_per_s", tokens / seconds, "tokens/s"), ("tokens_per_cpu_s", tokens / cpu, "tokens/s"),
            ("batch_ms", seconds / reps * 1000, "ms")]


def w_decode(torch, quick, size, inputs):
    model = Gpt2(inputs["tinyModel" if size == "tiny" else "smallModel"], torch)
    prompts = inputs["tinyPrompts" if size == "tiny" else "smallPrompts"]
    new = inputs["decodeNewTokens"][size]
    if quick:
        new = min(8, new)
    out = []

    def generate(ps, n):
        ids = torch.tensor(ps)
        with torch.no_grad():
            t0 = time.perf_counter()
            logits, past = model.forward(ids, use_lora=False, last_only=True)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            pre = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(n - 1):
                logits, past = model.forward(nxt, use_lora=False, past=past)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
            dec = time.perf_counter() - t0
        return pre, dec

    for b in (1, 8):
        ps = prompts[:b]
        generate(ps, 2)
        pre, dec = generate(ps, new)
        ptok = sum(len(p) for p in ps)
        log(f"decode-{size} b{b}: prefill {ptok} tokens {pre * 1000:.0f} ms, decode {new - 1} steps {dec * 1000:.0f} ms")
        out += [(f"prefill_tokens_per_s_b{b}", ptok / pre, "tokens/s"),
                (f"decode_tokens_per_s_b{b}", b * (new - 1) / dec, "tokens/s")]
    return out


def log(line):
    print(f"  [{WORKER_LABEL}] {line}", file=sys.stderr, flush=True)


WORKER_LABEL = ""


def worker(workload, threads, quick):
    global WORKER_LABEL
    WORKER_LABEL = f"{workload} torch/{threads}t"
    import resource
    import torch
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    inputs = shared_inputs() if workload != "matmul-peak" else None
    if workload == "matmul-peak":
        rows = w_matmul(torch, quick)
    elif workload.startswith("train-"):
        rows = w_train(torch, quick, workload.split("-")[1], inputs)
    elif workload == "score-small":
        rows = w_score(torch, quick, inputs)
    else:
        rows = w_decode(torch, quick, workload.split("-")[1], inputs)
    rows.append(("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MB"))
    runs = [{"workload": workload, "backend": "torch", "threads": threads, "metric": m, "value": v, "unit": u}
            for m, v, u in rows]
    print(PREFIX + json.dumps(runs), flush=True)


# ---------------------------------------------------------------------------------------- driver

def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = re.search(r"model name\s*:\s*(.+)", f.read()).group(1).strip()
    except (OSError, AttributeError):
        pass
    blas = "unknown"
    for link in ("/etc/alternatives/libblas.so.3-x86_64-linux-gnu", "/etc/alternatives/libblas.so.3"):
        if os.path.exists(link):
            blas = os.path.realpath(link)
            break
    import numpy
    import torch
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return {"cpu": cpu, "cores": os.cpu_count(), "memoryGiB": round(mem, 1), "os": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "blas": blas, "loadAverage": list(os.getloadavg())}


def main():
    args = sys.argv[1:]
    if args and args[0] == "--worker":
        worker(args[1], int(args[2]), "--quick" in args)
        return

    def get(flag, default=None):
        return args[args.index(flag) + 1] if flag in args else default

    quick = "--quick" in args
    only = get("--only", ",".join(WORKLOADS)).split(",")
    for w in only:
        if w not in WORKLOADS:
            sys.exit(f"--only: unknown workload {w!r}; choose from {', '.join(WORKLOADS)}")
    threads = [int(x) for x in get("--threads", "1,2").split(",")]
    out_dir = get("--out", os.path.join(ROOT, "bench", "results"))
    started = datetime.datetime.now(datetime.timezone.utc)
    if any(w != "matmul-peak" for w in only):
        shared_inputs()
    runs = []
    for w in only:
        for n in threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n))
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", w, str(n)] + (["--quick"] if quick else [])
            print(f"== {w} on torch/{n}t", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            try:
                p = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                   timeout=TIMEOUT_S[w] * (0.6 if quick else 1))
                line = next((l for l in p.stdout.splitlines() if l.startswith(PREFIX)), None)
                if p.returncode == 0 and line:
                    runs += json.loads(line[len(PREFIX):])
                else:
                    runs.append({"workload": w, "backend": "torch", "threads": n, "metric": "status", "value": None,
                                 "unit": "", "note": f"worker failed (exit {p.returncode})"})
            except subprocess.TimeoutExpired:
                runs.append({"workload": w, "backend": "torch", "threads": n, "metric": "status", "value": None,
                             "unit": "", "note": f"timed out after {TIMEOUT_S[w]} s"})
            print(f"   {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    if len(only) < len(WORKLOADS):
        try:
            with open(os.path.join(out_dir, "torch-latest.json")) as f:
                prev = json.load(f)
            runs += [r for r in prev["runs"] if r["workload"] not in only]
        except (OSError, ValueError, KeyError):
            pass
    date = started.isoformat().replace("+00:00", "Z")
    results = {"engine": "pytorch", "date": date, "machine": machine(),
               "options": {"quick": quick, "only": only, "threads": threads}, "runs": runs,
               "notes": ["eager PyTorch, fp32, CPU; LoRA and GPT-2 hand-written (no peft/transformers in Debian)"]}
    os.makedirs(out_dir, exist_ok=True)
    stamp = re.sub(r"\.\d+Z$", "Z", date).replace(":", "-")
    paths = []
    for name in ("torch-latest.json", f"torch-{stamp}.json"):
        path = os.path.join(out_dir, name)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
        paths.append(path)
    for r in runs:
        v = "n/a" if r["value"] is None else f"{r['value']:.4g}"
        print(f"{r['workload']:13s} {r['metric']:26s} torch/{r['threads']}t {v:>10s} {r['unit']}"
              + (f"  ({r['note']})" if r.get("note") else ""))
    print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    main()
