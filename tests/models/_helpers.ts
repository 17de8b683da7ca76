/** Shared helpers of the model tests: fixture paths, golden files, running a graph. */
import { Graph } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { Engine } from "../../src/runtime/session.ts";
import { resolveBackend } from "../../src/runtime/backend.ts";
import type { BackendName } from "../../src/runtime/ort.ts";
import { type LoadedModel, loadModel } from "../../src/models/load.ts";
import { buildForward, type ForwardInputs } from "../../src/models/forward.ts";
import { type FileSource, localFiles, memoryFiles } from "../../src/io/files.ts";
import type { TensorData } from "../../src/onnx/graph.ts";
import { serializeSafetensors } from "../../src/models/safetensors.ts";
import { toHalfBits } from "../../src/models/half_dtypes.ts";

export const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
export const REVIEW_GPT2 = new URL("../../models/review-gpt2", import.meta.url).pathname;
export const FIXTURE_MODELS = ["tiny-gpt2", "tiny-llama", "tiny-llama-v4"] as const;

/**
 * Sequence log-probs against transformers' float32 ones (|log p| up to 72, summed over the
 * completion): 10x the worst measured, 8.7e-6 (tiny-gpt2 with its adapter, wasm; WebGPU 5.9e-6).
 */
export const LOGP_TOL = 9e-5;

// deno-lint-ignore no-explicit-any
export type Golden = any;

const goldenCache = new Map<string, Golden>();
export async function golden(model: string): Promise<Golden> {
  let g = goldenCache.get(model);
  if (!g) {
    g = JSON.parse(await Deno.readTextFile(`${FIXTURES}${model}/golden.json`));
    goldenCache.set(model, g);
  }
  return g;
}

const modelCache = new Map<string, Promise<LoadedModel>>();
export function fixtureModel(name: string): Promise<LoadedModel> {
  let m = modelCache.get(name);
  if (!m) {
    m = loadModel(name.startsWith("/") ? name : `${FIXTURES}${name}`);
    modelCache.set(name, m);
  }
  return m;
}

/** An engine for a backend; WebGPU fails (not skips) when absent, as CI requires. */
export async function engineFor(backend: BackendName): Promise<Engine> {
  if (backend === "webgpu") await resolveBackend("webgpu");
  return await Engine.create(backend);
}

/** Runs a forward graph on int64 ids `[B, L]` and returns the logits. */
export async function runLogits(engine: Engine, model: LoadedModel, ids: number[][]): Promise<Float32Array> {
  const g = new Graph();
  const inputs: ForwardInputs = { inputIds: g.input("input_ids", "int64", ["batch", "seq"]) };
  g.output(buildForward(g, model, inputs).logits, "logits");
  const s = await engine.createSession(serializeModel(g));
  try {
    const r = await s.run({
      input_ids: engine.tensor(BigInt64Array.from(ids.flat(), BigInt), [ids.length, ids[0].length]),
    });
    return r.logits.data as Float32Array;
  } finally {
    await s.release();
  }
}

/** Max |a - b| over the golden's stored positions. */
export function maxLogitDiff(got: Float32Array, gold: Golden, V: number): number {
  const L = gold.logits.input_ids[0].length;
  let d = 0;
  gold.logits.values.forEach((rows: number[][], b: number) => {
    gold.logits.positions.forEach((p: number, pi: number) => {
      const want = rows[pi];
      for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(got[(b * L + p) * V + v] - want[v]));
    });
  });
  return d;
}

/** float32 → bfloat16 bits, round to nearest even. */
function bf16Bits(f: Float32Array): Uint16Array {
  const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
  return Uint16Array.from(u, (x) => (x + 0x7fff + ((x >>> 16) & 1)) >>> 16);
}

/**
 * The tiny-llama fixture with its weights rounded to a 16-bit type, as an in-memory directory `m`
 * (load it with `loadModel("m", files)`; `{ dtype: "float32" }` gives its exact float32 upcast).
 */
export async function halfModelFiles(dtype: "bfloat16" | "float16"): Promise<FileSource> {
  const dir = `${FIXTURES}tiny-llama`;
  const base = await loadModel(dir, localFiles(), { dtype: "float32" });
  const tensors = new Map<string, TensorData>();
  for (const [name, t] of base.weights) {
    if (name === "lm_head.weight" && base.config.tieWordEmbeddings) continue;
    const f = t.data as Float32Array;
    tensors.set(name, { dtype, shape: t.shape, data: dtype === "bfloat16" ? bf16Bits(f) : toHalfBits(f) });
  }
  const files: Record<string, Uint8Array | string> = { "m/model.safetensors": serializeSafetensors(tensors) };
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]) {
    files[`m/${f}`] = await Deno.readFile(`${dir}/${f}`);
  }
  return memoryFiles(files);
}
