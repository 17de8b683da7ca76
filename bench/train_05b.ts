/**
 * `train-0.5b`: one EXO-pref step of a Qwen2.5-0.5B-shaped model (24 layers, hidden 896, 14 heads,
 * 2 KV heads, intermediate 4864, vocab 151936, q/k/v biases, tied embeddings), LoRA r = 8 on every
 * projection, 2 pairs × 256 tokens — the size of the popular on-device checkpoints.
 *
 * The model has seeded random N(0, 0.02) weights stored as **bfloat16**, like the real checkpoint
 * (988 MB). It is generated at bench time into the bench cache (not committed), tensor by tensor
 * straight into the file, so generating it never holds the whole model in memory.
 *
 * @module
 */

import { Rng } from "../src/util/rng.ts";
import { cacheDir, type PairIds, TINY_MODEL } from "./inputs.ts";
import type { Run } from "./report.ts";
import { trainWorkload, type WorkloadContext } from "./workloads.ts";

/** Qwen2.5-0.5B's shape (config.json of the real checkpoint, minus its tokenizer ids). */
export const QWEN_05B_SHAPE = {
  layers: 24,
  hidden: 896,
  heads: 14,
  kvHeads: 2,
  intermediate: 4864,
  vocab: 151936,
} as const;
const SEED = 0;
/** Tokens per sequence: prompt + completion. */
const PROMPT = 128, COMPLETION = 128;

/** Every tensor of the checkpoint: name, shape and how it is filled. */
function tensors(): { name: string; shape: number[]; fill: "normal" | "one" | "zero" }[] {
  const { layers, hidden: H, heads, kvHeads, intermediate: I, vocab: V } = QWEN_05B_SHAPE;
  const d = H / heads, kv = kvHeads * d;
  const out: { name: string; shape: number[]; fill: "normal" | "one" | "zero" }[] = [
    { name: "model.embed_tokens.weight", shape: [V, H], fill: "normal" },
  ];
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      { name: `${p}.input_layernorm.weight`, shape: [H], fill: "one" },
      { name: `${p}.post_attention_layernorm.weight`, shape: [H], fill: "one" },
      { name: `${p}.self_attn.q_proj.weight`, shape: [H, H], fill: "normal" },
      { name: `${p}.self_attn.q_proj.bias`, shape: [H], fill: "zero" },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kv, H], fill: "normal" },
      { name: `${p}.self_attn.k_proj.bias`, shape: [kv], fill: "zero" },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kv, H], fill: "normal" },
      { name: `${p}.self_attn.v_proj.bias`, shape: [kv], fill: "zero" },
      { name: `${p}.self_attn.o_proj.weight`, shape: [H, H], fill: "normal" },
      { name: `${p}.mlp.gate_proj.weight`, shape: [I, H], fill: "normal" },
      { name: `${p}.mlp.up_proj.weight`, shape: [I, H], fill: "normal" },
      { name: `${p}.mlp.down_proj.weight`, shape: [H, I], fill: "normal" },
    );
  }
  out.push({ name: "model.norm.weight", shape: [H], fill: "one" });
  return out;
}

/** float32 → bfloat16 bits, rounding to nearest even (as torch's `.to(torch.bfloat16)`). */
function toBf16(f: Float32Array): Uint16Array {
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  const out = new Uint16Array(f.length);
  for (let i = 0; i < u.length; i++) {
    const x = u[i];
    out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * Writes (or reuses) the random bf16 Qwen2.5-0.5B-shaped model directory: config.json,
 * model.safetensors and the review model's tokenizer (its ids are all below the vocabulary size).
 */
export async function ensureQwen05bModel(dir = `${cacheDir()}/qwen2.5-0.5b-random-bf16-seed${SEED}`): Promise<string> {
  const stamp = `${dir}/.complete`;
  const want = JSON.stringify({ shape: QWEN_05B_SHAPE, seed: SEED, dtype: "bf16" });
  try {
    if ((await Deno.readTextFile(stamp)) === want) return dir;
  } catch { /* not there yet */ }
  await Deno.mkdir(dir, { recursive: true });
  const list = tensors();
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const t of list) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 2;
    header[t.name] = { dtype: "BF16", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const tmp = `${dir}/model.safetensors.${Deno.pid}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const len = new Uint8Array(8);
    new DataView(len.buffer).setUint32(0, json.length, true);
    await writeAll(file, len);
    await writeAll(file, json);
    const rng = new Rng(SEED);
    for (const t of list) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const f = new Float32Array(n);
      if (t.fill === "one") f.fill(1);
      else if (t.fill === "normal") {
        // Box-Muller, both outputs used.
        for (let i = 0; i < n; i += 2) {
          let u = rng.next();
          while (u === 0) u = rng.next();
          const r = Math.sqrt(-2 * Math.log(u)) * 0.02, th = 2 * Math.PI * rng.next();
          f[i] = r * Math.cos(th);
          if (i + 1 < n) f[i + 1] = r * Math.sin(th);
        }
      }
      const b = toBf16(f);
      await writeAll(file, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    }
  } finally {
    file.close();
  }
  await Deno.rename(tmp, `${dir}/model.safetensors`);
  const { layers, hidden, heads, kvHeads, intermediate, vocab } = QWEN_05B_SHAPE;
  const config = {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    hidden_act: "silu",
    hidden_size: hidden,
    intermediate_size: intermediate,
    num_hidden_layers: layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000.0,
    tie_word_embeddings: true,
    torch_dtype: "bfloat16",
    use_sliding_window: false,
    vocab_size: vocab,
    bos_token_id: 0,
    eos_token_id: 0,
  };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config, null, 2));
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
    try {
      await Deno.writeFile(`${dir}/${f}`, await Deno.readFile(`${TINY_MODEL}/${f}`));
    } catch { /* optional files */ }
  }
  await Deno.writeTextFile(stamp, want);
  return dir;
}

async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await file.write(data.subarray(at));
}

/** 2 pairs of random ids: prompt 128 + completion 128 tokens each (no padding). */
export function qwenBatch(seed = 5): PairIds[] {
  const rng = new Rng(seed);
  const ids = (len: number) => Array.from({ length: len }, () => rng.int(QWEN_05B_SHAPE.vocab));
  return Array.from({ length: 2 }, () => ({ prompt: ids(PROMPT), chosen: ids(COMPLETION), rejected: ids(COMPLETION) }));
}

/** The workload: one measured EXO-pref step, LoRA r = 8 on every projection. */
export async function train05b(ctx: WorkloadContext): Promise<Run[]> {
  const t0 = performance.now();
  const modelDir = await ensureQwen05bModel();
  ctx.log(`model ready in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${modelDir}`);
  return await trainWorkload(ctx, {
    workload: "train-0.5b",
    modelDir,
    batches: [qwenBatch()],
    warmup: 0,
    measured: 1,
    loraR: 8,
  });
}

if (import.meta.main) {
  // For bench/torch/bench.py: the model directory and the batch, as JSON.
  console.log(JSON.stringify({ modelDir: await ensureQwen05bModel(), batch: qwenBatch() }));
}
