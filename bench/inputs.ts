/**
 * The benchmark's inputs, built deterministically so that our engine and the PyTorch reference
 * (bench/torch/bench.py) see the same tokens: the review model's preference batches, random token
 * batches for the GPT-2-124M shape, decode prompts, and the random 124M model directory itself.
 *
 * `prepareShared()` writes them all under one cache directory (the JSON for PyTorch, and the model
 * directory, whose 500 MB of weights are generated once and reused while the seed and shape match).
 *
 * @module
 */

import { BatchSampler, exampleLength } from "../src/data/batching.ts";
import { encodeDataset, type EncodedPair } from "../src/data/encode.ts";
import { readDataset } from "../src/data/formats.ts";
import { loadModel } from "../src/models/load.ts";
import { serializeSafetensors } from "../src/models/safetensors.ts";
import type { TensorData } from "../src/onnx/graph.ts";
import { Rng } from "../src/util/rng.ts";

/** Paths of the bundled inputs, relative to the repository root. */
export const TINY_MODEL = "models/review-gpt2";
export const TINY_PAIRS = "data/pairs.jsonl";
export const TINY_PROMPTS = "data/prompts.jsonl";

/** The GPT-2-124M shape (random weights). */
export const SMALL_SHAPE = { layers: 12, hidden: 768, heads: 12, vocab: 50257, positions: 1024 } as const;
export const SMALL_SEED = 0;

/** Shapes of the workloads (full and `--quick`). */
export const SHAPES = {
  tinyBatchPairs: 8,
  tinyLoraR: 8,
  smallBatchPairs: 2,
  smallSeqLen: 128,
  smallPromptLen: 64,
  smallLoraR: 8,
  scoreRows: 4,
  decodeBatches: [1, 8],
  tinyPromptLen: 16,
  smallPromptLenDecode: 32,
} as const;

/** One preference pair as token ids. */
export interface PairIds {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

/** Everything PyTorch needs to run the same workloads (written as JSON). */
export interface SharedInputs {
  tinyModel: string;
  smallModel: string;
  /** train-tiny batches in the order they are run (the trainer's length-bucketed sampler, seed 0). */
  tinyBatches: PairIds[][];
  /** train-small / score-small batches: random ids, full length, no padding. */
  smallBatches: PairIds[][];
  /** Decode prompts (token ids), at least 8 per model. */
  tinyPrompts: number[][];
  smallPrompts: number[][];
  decodeNewTokens: { tiny: number; small: number };
}

/** The cache directory shared with PyTorch: `$EXO_BENCH_CACHE` or `<tmp>/exo-tune-bench`. */
export function cacheDir(): string {
  const env = Deno.env.get("EXO_BENCH_CACHE");
  if (env) return env;
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  return `${tmp}/exo-tune-bench`;
}

/** Path of the inputs JSON inside the cache. */
export function inputsPath(): string {
  return `${cacheDir()}/inputs.json`;
}

/** The review model's pairs, encoded as the trainer encodes them. */
export async function tinyPairs(): Promise<EncodedPair[]> {
  const model = await loadModel(TINY_MODEL);
  const ds = await readDataset(TINY_PAIRS, { vocabSize: model.config.vocabSize });
  const enc = encodeDataset(ds, model.tokenizer, {
    maxLength: model.config.maxPositions,
    vocabSize: model.config.vocabSize,
  });
  if (enc.kind !== "pairs") throw new Error(`${TINY_PAIRS} must hold preference pairs`);
  return enc.examples;
}

/** The first `n` batches the trainer's sampler (seed 0) would draw. */
export function tinyBatchesFrom(pairs: readonly EncodedPair[], n: number): PairIds[][] {
  const sampler = new BatchSampler(pairs.map((p) => exampleLength(p)), {
    batchSize: SHAPES.tinyBatchPairs,
    seed: 0,
  });
  const out: PairIds[][] = [];
  let cursor = { epoch: 0, batchIndex: 0 };
  for (let i = 0; i < n; i++) {
    out.push(
      sampler.batchAt(cursor).map((j) => ({
        prompt: pairs[j].promptIds,
        chosen: pairs[j].chosenIds,
        rejected: pairs[j].rejectedIds,
      })),
    );
    cursor = sampler.advance(cursor);
  }
  return out;
}

/** Random full-length pairs for the 124M shape: prompt 64 + completion 64 tokens each. */
export function smallBatches(n: number, seed = 1): PairIds[][] {
  const rng = new Rng(seed);
  const ids = (len: number) => Array.from({ length: len }, () => rng.int(SMALL_SHAPE.vocab));
  const c = SHAPES.smallSeqLen - SHAPES.smallPromptLen;
  return Array.from(
    { length: n },
    () =>
      Array.from({ length: SHAPES.smallBatchPairs }, () => ({
        prompt: ids(SHAPES.smallPromptLen),
        chosen: ids(c),
        rejected: ids(c),
      })),
  );
}

/** Random prompts for decoding. */
export function randomPrompts(count: number, len: number, vocab: number, seed: number): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => Array.from({ length: len }, () => rng.int(vocab)));
}

/** The first `count` prompts of data/prompts.jsonl, tokenized and cut to `len` tokens (at least `len` long). */
export async function tinyPrompts(count: number, len: number): Promise<number[][]> {
  const model = await loadModel(TINY_MODEL);
  const lines = (await Deno.readTextFile(TINY_PROMPTS)).split("\n").filter((l) => l.trim());
  const out: number[][] = [];
  for (const line of lines) {
    const ids = model.tokenizer.encode(String(JSON.parse(line).prompt), { addSpecialTokens: true });
    if (ids.length >= len) out.push(ids.slice(0, len));
    if (out.length === count) break;
  }
  if (out.length < count) throw new Error(`${TINY_PROMPTS} has fewer than ${count} prompts of ${len} tokens`);
  return out;
}

/**
 * Writes a GPT-2-124M-shaped model directory with seeded N(0, 0.02) weights (LayerNorm weights 1,
 * biases 0, as transformers initializes them), tied embeddings, and the review model's tokenizer
 * padded to the vocabulary. Reused when it exists with the same shape, seed and tokenizer.
 */
export async function ensureSmallModel(dir = `${cacheDir()}/gpt2-124m-random-seed${SMALL_SEED}`): Promise<string> {
  const stamp = `${dir}/.complete`;
  const want = JSON.stringify({ shape: SMALL_SHAPE, seed: SMALL_SEED, tokenizer: "padded" });
  try {
    if ((await Deno.readTextFile(stamp)) === want) return dir;
  } catch { /* not there yet */ }
  await Deno.mkdir(dir, { recursive: true });
  const { layers: L, hidden: H, vocab: V, positions: P, heads } = SMALL_SHAPE;
  const rng = new Rng(SMALL_SEED);
  const normal = (shape: number[]): TensorData => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    // Box-Muller, both outputs used.
    for (let i = 0; i < n; i += 2) {
      let u = rng.next();
      while (u === 0) u = rng.next();
      const r = Math.sqrt(-2 * Math.log(u)) * 0.02, t = 2 * Math.PI * rng.next();
      data[i] = r * Math.cos(t);
      if (i + 1 < n) data[i + 1] = r * Math.sin(t);
    }
    return { dtype: "float32", shape, data };
  };
  const fill = (shape: number[], v: number): TensorData => ({
    dtype: "float32",
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v),
  });
  const w = new Map<string, TensorData>();
  w.set("transformer.wte.weight", normal([V, H]));
  w.set("transformer.wpe.weight", normal([P, H]));
  for (let i = 0; i < L; i++) {
    const p = `transformer.h.${i}`;
    w.set(`${p}.ln_1.weight`, fill([H], 1));
    w.set(`${p}.ln_1.bias`, fill([H], 0));
    w.set(`${p}.attn.c_attn.weight`, normal([H, 3 * H]));
    w.set(`${p}.attn.c_attn.bias`, fill([3 * H], 0));
    w.set(`${p}.attn.c_proj.weight`, normal([H, H]));
    w.set(`${p}.attn.c_proj.bias`, fill([H], 0));
    w.set(`${p}.ln_2.weight`, fill([H], 1));
    w.set(`${p}.ln_2.bias`, fill([H], 0));
    w.set(`${p}.mlp.c_fc.weight`, normal([H, 4 * H]));
    w.set(`${p}.mlp.c_fc.bias`, fill([4 * H], 0));
    w.set(`${p}.mlp.c_proj.weight`, normal([4 * H, H]));
    w.set(`${p}.mlp.c_proj.bias`, fill([H], 0));
  }
  w.set("transformer.ln_f.weight", fill([H], 1));
  w.set("transformer.ln_f.bias", fill([H], 0));
  const config = JSON.parse(await Deno.readTextFile(`${TINY_MODEL}/config.json`));
  Object.assign(config, {
    n_layer: L,
    n_embd: H,
    n_head: heads,
    n_positions: P,
    n_ctx: P,
    vocab_size: V,
    bos_token_id: 0,
    eos_token_id: 0,
    tie_word_embeddings: true,
  });
  await writeAtomic(`${dir}/config.json`, new TextEncoder().encode(JSON.stringify(config, null, 2)));
  await writeAtomic(`${dir}/model.safetensors`, serializeSafetensors(w, { format: "pt" }));
  // The review model's BPE tokenizer, its vocabulary padded with placeholder tokens up to 50257 so
  // that every id the random model generates decodes (the Generator detokenizes as it streams).
  const tok = JSON.parse(await Deno.readTextFile(`${TINY_MODEL}/tokenizer.json`));
  const vocab = tok.model.vocab as Record<string, number>;
  for (let id = Object.keys(vocab).length; id < V; id++) vocab[`<x${id}>`] = id;
  await writeAtomic(`${dir}/tokenizer.json`, new TextEncoder().encode(JSON.stringify(tok)));
  for (const f of ["tokenizer_config.json", "special_tokens_map.json"]) {
    try {
      await Deno.writeFile(`${dir}/${f}`, await Deno.readFile(`${TINY_MODEL}/${f}`));
    } catch { /* optional files */ }
  }
  await Deno.writeTextFile(stamp, want);
  return dir;
}

/** Builds (or reuses) the model directory and writes inputs.json; returns it. */
export async function prepareShared(): Promise<SharedInputs> {
  const smallModel = await ensureSmallModel();
  const pairs = await tinyPairs();
  const inputs: SharedInputs = {
    tinyModel: await Deno.realPath(TINY_MODEL),
    smallModel: await Deno.realPath(smallModel),
    tinyBatches: tinyBatchesFrom(pairs, 24),
    smallBatches: smallBatches(6),
    tinyPrompts: await tinyPrompts(8, SHAPES.tinyPromptLen),
    smallPrompts: randomPrompts(8, SHAPES.smallPromptLenDecode, SMALL_SHAPE.vocab, 2),
    decodeNewTokens: { tiny: 32, small: 16 },
  };
  await writeAtomic(inputsPath(), new TextEncoder().encode(JSON.stringify(inputs)));
  return inputs;
}

/** Reads inputs.json, preparing it first when it is missing. */
export async function sharedInputs(): Promise<SharedInputs> {
  try {
    return JSON.parse(await Deno.readTextFile(inputsPath())) as SharedInputs;
  } catch {
    return await prepareShared();
  }
}

/** Write to a temp file, then rename: readers never see a half-written file. */
export async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  const tmp = `${path}.${Deno.pid}.${Date.now()}.tmp`;
  await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

if (import.meta.main) {
  const inputs = await prepareShared();
  console.log(JSON.stringify({ inputs: inputsPath(), smallModel: inputs.smallModel, tinyModel: inputs.tinyModel }));
}
