/**
 * Cached decoding at the session level: one prefill and one decode session, the KV cache between
 * them, left padding, attention mask and position ids.
 *
 * Batches are left-padded: every row's last prompt token sits in the last column, so the last
 * position's logits are every row's next-token logits and new tokens append to all rows alike.
 * Padding columns have mask 0 and position 1 (as transformers fills them); real tokens get positions
 * 0, 1, ... counted from their row's first real token, so a padded row computes what it would alone.
 *
 * On the GPU backends the cache stays on the GPU: the `present_*` outputs are `gpu-buffer` tensors fed back as
 * the next step's `past_*` inputs, and each replaced tensor is disposed. Only `next_token` (greedy,
 * `[rows]` int64) or the last position's `logits` (`[rows, V]`) come back to the CPU.
 *
 * @module
 */

import { Graph } from "../onnx/graph.ts";
import { serializeModel } from "../onnx/serialize.ts";
import { halfDtypesFor } from "../models/half_dtypes.ts";
import type { LoraConfig } from "../lora/config.ts";
import type { LoadedModel } from "../models/load.ts";
import { type Engine, type GraphSession, type OrtTensor, TensorPool } from "../runtime/session.ts";
import { buildGenerationGraph, cacheNames, loraSlotInputs } from "./graphs.ts";

/** What a step hands back. */
export interface StepResult {
  /** `[rows, V]` logits of the last position (when asked for). */
  logits?: Float32Array;
  /** `[rows]` argmax of those logits (when asked for). */
  nextTokens?: number[];
}

/** Which output a step downloads: the argmax ids (greedy) or the full last-position logits. */
export type StepOutput = "next_token" | "logits";

/** Options of {@link KvDecoder.create}. */
export interface KvDecoderOptions {
  /** Build LoRA slot inputs for the modules this config targets (see `buildGenerationGraph`). */
  loraSlots?: LoraConfig;
}

/** Prefill + decode sessions of one model and the cache of the batch being decoded. */
export class KvDecoder {
  readonly engine: Engine;
  readonly model: LoadedModel;
  /** The LoRA slot inputs (PEFT key → shape with `"lora_r"`), empty without slots. */
  readonly loraInputs: Map<string, (number | string)[]>;
  #prefill: GraphSession;
  #decode: GraphSession;
  #cache = new TensorPool();
  #lora: Feeds = { tensors: {}, release: () => Promise.resolve() };
  #mask: BigInt64Array = new BigInt64Array(0);
  #rows = 0;
  #length = 0;
  #nextPosition: number[] = [];

  private constructor(
    engine: Engine,
    model: LoadedModel,
    prefill: GraphSession,
    decode: GraphSession,
    loraInputs: Map<string, (number | string)[]>,
  ) {
    this.engine = engine;
    this.model = model;
    this.#prefill = prefill;
    this.#decode = decode;
    this.loraInputs = loraInputs;
  }

  /** Builds both graphs and their sessions. */
  static async create(engine: Engine, model: LoadedModel, options: KvDecoderOptions = {}): Promise<KvDecoder> {
    const presents: string[] = [];
    for (let i = 0; i < model.config.numLayers; i++) {
      const n = cacheNames(i);
      presents.push(n.presentKey, n.presentValue);
    }
    const half = await halfDtypesFor(engine.backend);
    // Weights are referenced in the checkpoint's own bytes; converted ones (WebGPU) go to a blob.
    const ext = { externalDataThreshold: 1 << 20 };
    const prefill = await engine.createSession(
      serializeModel(buildGenerationGraph(model, "prefill", options.loraSlots, half), ext),
      { gpuOutputs: presents },
    );
    let decode: GraphSession;
    try {
      decode = await engine.createSession(
        serializeModel(buildGenerationGraph(model, "decode", options.loraSlots, half), ext),
        { gpuOutputs: presents },
      );
    } catch (e) {
      await prefill.release();
      throw e;
    }
    const slots = options.loraSlots ? loraSlotInputs(model, options.loraSlots) : new Map();
    return new KvDecoder(engine, model, prefill, decode, slots);
  }

  /** Rows of the batch being decoded. */
  get rows(): number {
    return this.#rows;
  }

  /** Columns of the cache (padding included). */
  get cacheLength(): number {
    return this.#length;
  }

  /** GPU tensors held by the cache (0 on wasm): for leak checks. */
  get gpuTensors(): number {
    return this.#cache.gpuCount();
  }

  /**
   * Sets the LoRA slot feeds (keys must be exactly {@link loraInputs}). The decoder takes
   * ownership: it releases the feeds it replaces, and those it holds when released.
   */
  async setLoraFeeds(feeds: Feeds): Promise<void> {
    const missing = [...this.loraInputs.keys()].filter((k) => !(k in feeds.tensors));
    if (missing.length) throw new Error(`LoRA feeds missing: ${missing.slice(0, 3).join(", ")}`);
    const old = this.#lora;
    this.#lora = feeds;
    await old.release();
  }

  /**
   * Runs the prompts and starts a new cache (the previous one is freed). Row r of the batch copies
   * prompt `rowSource[r]` (K samples per prompt share one prefill).
   */
  async prefill(
    prompts: readonly (readonly number[])[],
    rowSource: readonly number[],
    want: StepOutput,
  ): Promise<StepResult> {
    const P = prompts.length;
    if (P === 0) throw new RangeError("prefill() needs at least one prompt");
    for (const [i, p] of prompts.entries()) {
      if (p.length === 0) throw new RangeError(`Prompt ${i} has no tokens: a prompt needs at least one token`);
    }
    const V = this.model.config.vocabSize;
    for (const r of rowSource) {
      if (!Number.isInteger(r) || r < 0 || r >= P) throw new RangeError(`rowSource entry ${r} is not a prompt index`);
    }
    const T = Math.max(...prompts.map((p) => p.length));
    const ids = new BigInt64Array(P * T);
    const mask = new BigInt64Array(P * T);
    const pos = new BigInt64Array(P * T).fill(1n);
    prompts.forEach((p, i) => {
      const pad = T - p.length;
      for (let t = 0; t < p.length; t++) {
        const id = p[t];
        if (!Number.isInteger(id) || id < 0 || id >= V) {
          throw new RangeError(`Prompt ${i}: token id ${id} is outside the vocabulary [0, ${V})`);
        }
        ids[i * T + pad + t] = BigInt(id);
        mask[i * T + pad + t] = 1n;
        pos[i * T + pad + t] = BigInt(t);
      }
    });
    const e = this.engine;
    this.#cache.dispose();
    const rows = rowSource.length;
    const feeds: Record<string, OrtTensor> = {
      input_ids: e.tensor(ids, [P, T]),
      attention_mask: e.tensor(mask, [P, T]),
      position_ids: e.tensor(pos, [P, T]),
      row_source: e.tensor(BigInt64Array.from(rowSource, (r) => BigInt(r)), [rows]),
      ...this.#lora.tensors,
    };
    const out = await this.#run(this.#prefill, feeds, want);
    this.#rows = rows;
    this.#length = T;
    this.#mask = new BigInt64Array(rows * T);
    rowSource.forEach((src, r) => this.#mask.set(mask.subarray(src * T, (src + 1) * T), r * T));
    this.#nextPosition = rowSource.map((src) => prompts[src].length);
    return out;
  }

  /** Appends one token per row and runs the decode graph on the cache. */
  async step(tokens: readonly number[], want: StepOutput): Promise<StepResult> {
    const rows = this.#rows;
    if (rows === 0) throw new Error("step() before prefill()");
    if (tokens.length !== rows) throw new RangeError(`step() needs ${rows} tokens (one per row), got ${tokens.length}`);
    const L = this.#length + 1;
    const mask = new BigInt64Array(rows * L);
    for (let r = 0; r < rows; r++) {
      mask.set(this.#mask.subarray(r * (L - 1), (r + 1) * (L - 1)), r * L);
      mask[r * L + L - 1] = 1n;
    }
    const e = this.engine;
    const feeds: Record<string, OrtTensor> = {
      input_ids: e.tensor(BigInt64Array.from(tokens, (t) => BigInt(t)), [rows, 1]),
      attention_mask: e.tensor(mask, [rows, L]),
      position_ids: e.tensor(BigInt64Array.from(this.#nextPosition, (p) => BigInt(p)), [rows, 1]),
      ...this.#lora.tensors,
    };
    for (let i = 0; i < this.model.config.numLayers; i++) {
      const n = cacheNames(i);
      feeds[n.pastKey] = this.#cache.get(n.presentKey);
      feeds[n.pastValue] = this.#cache.get(n.presentValue);
    }
    const out = await this.#run(this.#decode, feeds, want);
    this.#mask = mask;
    this.#length = L;
    this.#nextPosition = this.#nextPosition.map((p) => p + 1);
    return out;
  }

  async #run(session: GraphSession, feeds: Record<string, OrtTensor>, want: StepOutput): Promise<StepResult> {
    const fetches: string[] = [want];
    for (let i = 0; i < this.model.config.numLayers; i++) {
      const n = cacheNames(i);
      fetches.push(n.presentKey, n.presentValue);
    }
    const res = await session.run(feeds, fetches);
    // Only now may the previous cache go: the run above read it.
    for (let i = 0; i < this.model.config.numLayers; i++) {
      const n = cacheNames(i);
      this.#cache.set(n.presentKey, res[n.presentKey]);
      this.#cache.set(n.presentValue, res[n.presentValue]);
    }
    const t = res[want];
    const data = await this.engine.read(t);
    if (t.location === "gpu-buffer") t.dispose();
    if (want === "logits") return { logits: data as Float32Array };
    return { nextTokens: Array.from(data as BigInt64Array, Number) };
  }

  /** Frees the cache and both sessions. */
  async release(): Promise<void> {
    this.#cache.dispose();
    await this.#lora.release();
    await this.#prefill.release();
    await this.#decode.release();
  }
}

/** Constant feeds and how to free them. */
export interface Feeds {
  tensors: Record<string, OrtTensor>;
  release(): Promise<void>;
}

/**
 * Copies CPU tensors to the GPU once (an identity graph whose outputs stay `gpu-buffer`), so
 * constant feeds such as LoRA matrices are not uploaded on every run. The copies belong to that
 * session, which lives until `release()`. On the CPU backends the tensors are used as they are.
 */
export async function uploadOnce(engine: Engine, tensors: Record<string, OrtTensor>): Promise<Feeds> {
  const names = Object.keys(tensors);
  if (!engine.deviceOutputs || names.length === 0) return { tensors, release: () => Promise.resolve() };
  const g = new Graph("upload");
  const outputs: string[] = [];
  names.forEach((name, i) => {
    const t = tensors[name];
    const x = g.input(`x${i}`, "float32", t.dims);
    outputs.push(g.output(x, `y${i}`).name);
  });
  const session = await engine.createSession(serializeModel(g), { gpuOutputs: outputs });
  const feeds: Record<string, OrtTensor> = {};
  names.forEach((name, i) => (feeds[`x${i}`] = tensors[name]));
  let res: Record<string, OrtTensor>;
  try {
    res = await session.run(feeds);
  } catch (e) {
    await session.release();
    throw e;
  }
  const out: Record<string, OrtTensor> = {};
  names.forEach((name, i) => (out[name] = res[`y${i}`]));
  return {
    tensors: out,
    async release() {
      for (const t of Object.values(out)) if (t.location === "gpu-buffer") t.dispose();
      await session.release();
    },
  };
}
