/**
 * Text generation: prompts in, completions out (or streamed), with a KV cache, sampling, stop
 * conditions and an optional LoRA adapter.
 *
 * Adapters run either unmerged — the LoRA matrices are inputs of the graphs, so
 * {@link Generator.setAdapter} switches or disables an adapter by changing feeds, without
 * rebuilding (a disabled adapter is fed zeros) — or merged into the base weights (`merge: true`:
 * `W + s·BA` folded in, no LoRA cost per token, a rebuild per adapter change).
 *
 * K samples of each prompt decode as K rows of one batch; several prompts decode together too
 * (left-padded, see `decoder.ts`).
 *
 * @module
 */

import type { LoraAdapter } from "../lora/adapter.ts";
import { validateAdapter } from "../lora/adapter.ts";
import { loraScaling } from "../lora/config.ts";
import { mergeAdapter } from "../lora/merge.ts";
import { loraTargets } from "../lora/targets.ts";
import type { LoadedModel } from "../models/load.ts";
import { familyOf, maxSequenceLength } from "../models/registry.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import type { BackendName } from "../runtime/ort.ts";
import { type Engine, engineFor, type OrtTensor } from "../runtime/session.ts";
import { Rng } from "../util/rng.ts";
import { type Feeds, KvDecoder, uploadOnce } from "./decoder.ts";
import { checkSamplingOptions, isGreedy, logSoftmaxAt, sampleToken, type SamplingOptions } from "./sampling.ts";
import { TextStream } from "./stop.ts";

/** A prompt: text (tokenized with the model's tokenizer) or token ids used verbatim. */
export type Prompt = string | readonly number[];

/** Options of {@link Generator.create}. */
export interface GeneratorOptions {
  /** Default "auto" (WebGPU on a hardware adapter, else wasm). */
  backend?: BackendPreference;
  /** CPU threads of a new engine (native-cpu intra-op threads; wasm threads). */
  threads?: number;
  /** An engine to reuse (its backend wins over `backend`). */
  engine?: Engine;
  /** A LoRA adapter to apply from the start. */
  adapter?: LoraAdapter | null;
  /** Fold adapters into the base weights instead of running them as separate matrices. Default false. */
  merge?: boolean;
}

/** Options of one generation call. */
export interface GenerateOptions extends SamplingOptions {
  /**
   * New tokens per sequence at most. Default: `max_new_tokens` of `generation_config.json`, else 32.
   * GPT-2 stops earlier when its position table (`n_positions`) is full.
   */
  maxNewTokens?: number;
  /** Completions per prompt, decoded as rows of one batch. Default 1. */
  numSamples?: number;
  /** Seed of the sampler (default: a random one, reported in the result). Greedy ignores it. */
  seed?: number;
  /** Stop when the completion's text contains one of these; the text is cut before it. */
  stopStrings?: readonly string[];
  /** Token ids that end a sequence. Default: the model's EOS ids (several for Llama 3). */
  eosTokenIds?: readonly number[];
  /** Add the tokenizer's special tokens (e.g. Llama's `<s>`) to text prompts. Default true. */
  addSpecialTokens?: boolean;
  /**
   * Also report each generated token's log-probability under the model's own distribution
   * (`log_softmax(logits)`, no temperature, top-k or top-p: what {@link Scorer} computes), in float64
   * from the logits the token was drawn from. With temperature 1 and no top-k/top-p that is the
   * distribution sampled from, so `logprob` is log π(y|x) of the sampled y, EOS included when it
   * ended the sequence. Default false (greedy then downloads only the argmax).
   */
  logprobs?: boolean;
}

/** Why a sequence ended. */
export type FinishReason = "eos" | "stop" | "length";

/** One streamed token. */
export interface StreamEvent {
  /** Row of the batch: `prompt * numSamples + sample`. */
  index: number;
  prompt: number;
  sample: number;
  /** The token drawn (an EOS id when the sequence ends on EOS). */
  tokenId: number;
  /** New text this token completes (may be empty while a split UTF-8 character or a possible stop string waits). */
  text: string;
  /** Set on the sequence's last event. */
  finishReason?: FinishReason;
  /** log π(token | prefix) under the model's own distribution (with `logprobs: true`). */
  logprob?: number;
}

/** One finished completion. */
export interface GeneratedSequence {
  index: number;
  prompt: number;
  sample: number;
  promptIds: number[];
  /** Generated ids (the EOS id included when it ended the sequence). */
  tokenIds: number[];
  /** Decoded completion (special tokens skipped), cut before a stop string. */
  text: string;
  finishReason: FinishReason;
  /** With `logprobs: true`: log π(token | prefix) of each of `tokenIds` (model distribution, τ = 1). */
  tokenLogprobs?: number[];
  /** With `logprobs: true`: their sum, log π(tokenIds | prompt). */
  logprob?: number;
}

/**
 * Where the time went, so a benchmark can report prefill and decode speed separately. Times are
 * wall-clock milliseconds of the graph runs including their downloads; host-side sampling and
 * detokenization are in `hostMs`.
 */
export interface GenerationTimings {
  backend: BackendName;
  /** Batch rows (prompts × samples). */
  rows: number;
  /** Real (unpadded) prompt tokens over the distinct prompts, as prefilled. */
  promptTokens: number;
  prefillMs: number;
  /** Decode graph runs (each advances every row by one token). */
  decodeSteps: number;
  decodeMs: number;
  hostMs: number;
  /** `promptTokens / prefill seconds`. */
  prefillTokensPerSecond: number;
  /** `rows · decodeSteps / decode seconds`: tokens the decode graph produced per second. */
  decodeTokensPerSecond: number;
}

/** What {@link Generator.generate} returns. */
export interface GenerationResult {
  /** In row order: prompt 0's samples, then prompt 1's, ... */
  sequences: GeneratedSequence[];
  /** The seed used (the given one or the one drawn). */
  seed: number;
  /** The sampling settings in force (temperature 0 = greedy). */
  sampling: Required<SamplingOptions>;
  timings: GenerationTimings;
}

/** Generates text from a loaded model. Calls on one generator run one at a time. */
export class Generator {
  readonly model: LoadedModel;
  readonly engine: Engine;
  /** Why this backend was taken. */
  readonly reason: string;
  readonly merge: boolean;
  #decoder: KvDecoder;
  #adapter: LoraAdapter | null;
  #lock: Promise<void> = Promise.resolve();

  private constructor(
    model: LoadedModel,
    engine: Engine,
    reason: string,
    merge: boolean,
    decoder: KvDecoder,
    adapter: LoraAdapter | null,
  ) {
    this.model = model;
    this.engine = engine;
    this.reason = reason;
    this.merge = merge;
    this.#decoder = decoder;
    this.#adapter = adapter;
  }

  /** Builds the prefill and decode sessions (with the adapter, if any). */
  static async create(model: LoadedModel, options: GeneratorOptions = {}): Promise<Generator> {
    const { engine, reason } = await engineFor(options);
    const adapter = options.adapter ?? null;
    if (adapter) validateAdapter(adapter, model.config, "adapter");
    const merge = options.merge ?? false;
    const decoder = await buildDecoder(engine, model, adapter, merge);
    return new Generator(model, engine, reason, merge, decoder, adapter);
  }

  /** The backend the sessions run on. */
  get backend(): BackendName {
    return this.engine.backend;
  }

  /** The adapter in use, or null. */
  get adapter(): LoraAdapter | null {
    return this.#adapter;
  }

  /**
   * Switches to another adapter, or to the base model with `null`. Unmerged, an adapter whose
   * targets the graphs already have only changes feeds; otherwise (or merged) the sessions are
   * rebuilt.
   */
  async setAdapter(adapter: LoraAdapter | null): Promise<void> {
    if (adapter) validateAdapter(adapter, this.model.config, "adapter");
    await this.#exclusive(async () => {
      const d = this.#decoder;
      const slotsFit = !this.merge && d.loraInputs.size > 0 &&
        (!adapter || [...adapter.tensors.keys()].every((k) => d.loraInputs.has(k)));
      if (slotsFit) {
        await d.setLoraFeeds(await loraFeeds(this.engine, d, adapter));
      } else if (this.merge || adapter || d.loraInputs.size > 0) {
        const next = await buildDecoder(this.engine, this.model, adapter, this.merge);
        await d.release();
        this.#decoder = next;
      }
      this.#adapter = adapter;
    });
  }

  /** Generates completions for one prompt or a list of prompts. */
  async generate(prompt: Prompt | readonly Prompt[], options: GenerateOptions = {}): Promise<GenerationResult> {
    const it = this.#events(prompt, options);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /**
   * Streams tokens as they are drawn (all rows interleaved, step by step). The texts of a row's
   * events concatenate to the `text` that {@link generate} returns for it.
   */
  async *stream(
    prompt: Prompt | readonly Prompt[],
    options: GenerateOptions = {},
  ): AsyncGenerator<StreamEvent, GenerationResult> {
    return yield* this.#events(prompt, options);
  }

  /**
   * The last position's logits `[prompts, V]` of each prompt run in full (no cache reuse): the
   * reference that cached decoding must match.
   */
  async lastLogits(prompts: readonly (readonly number[])[]): Promise<Float32Array> {
    return await this.#exclusive(async () => {
      const r = await this.#decoder.prefill(prompts, prompts.map((_, i) => i), "logits");
      return r.logits!;
    });
  }

  /** Frees the sessions. */
  async release(): Promise<void> {
    await this.#exclusive(() => this.#decoder.release());
  }

  async #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.#lock;
    let done!: () => void;
    this.#lock = new Promise((r) => (done = r));
    await prev;
    try {
      return await fn();
    } finally {
      done();
    }
  }

  async *#events(
    prompt: Prompt | readonly Prompt[],
    options: GenerateOptions,
  ): AsyncGenerator<StreamEvent, GenerationResult> {
    const prev = this.#lock;
    let unlock!: () => void;
    this.#lock = new Promise((r) => (unlock = r));
    await prev;
    try {
      return yield* this.#decodeLoop(prompt, options);
    } finally {
      unlock();
    }
  }

  async *#decodeLoop(
    prompt: Prompt | readonly Prompt[],
    options: GenerateOptions,
  ): AsyncGenerator<StreamEvent, GenerationResult> {
    const model = this.model;
    const c = model.config;
    const tokenizer = model.tokenizer;
    const prompts = normalizePrompts(prompt).map((p) =>
      typeof p === "string" ? tokenizer.encode(p, { addSpecialTokens: options.addSpecialTokens ?? true }) : [...p]
    );
    const sampling = resolveSampling(model, options);
    const K = options.numSamples ?? 1;
    if (!Number.isInteger(K) || K < 1) throw new RangeError(`numSamples must be a positive integer, got ${K}`);
    let maxNew = options.maxNewTokens ?? model.generation.maxNewTokens ?? 32;
    if (!Number.isInteger(maxNew) || maxNew < 1) {
      throw new RangeError(`maxNewTokens must be a positive integer, got ${maxNew}`);
    }
    const longest = Math.max(...prompts.map((p) => p.length));
    const limit = maxSequenceLength(c);
    if (Number.isFinite(limit)) {
      if (longest >= limit) {
        throw new RangeError(
          `The prompt has ${longest} tokens; this ${
            familyOf(c).name
          } model has ${limit} positions and needs room for at least one new token`,
        );
      }
      maxNew = Math.min(maxNew, limit - longest);
    }
    const eos = new Set(options.eosTokenIds ?? model.generation.eosTokenIds);
    const padId = model.generation.padTokenId ?? [...eos][0] ?? 0;
    const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
    const master = new Rng(seed);
    const rows = prompts.length * K;
    const rowSource = Array.from({ length: rows }, (_, r) => Math.floor(r / K));
    const rngs = Array.from({ length: rows }, () => new Rng(master.nextU32()));
    const streams = Array.from({ length: rows }, () => new TextStream(tokenizer, options.stopStrings ?? []));
    const generated: number[][] = Array.from({ length: rows }, () => []);
    const finish: (FinishReason | null)[] = new Array(rows).fill(null);
    const greedy = isGreedy(sampling);
    const withLogprobs = options.logprobs ?? false;
    const logprobs: number[][] | null = withLogprobs ? Array.from({ length: rows }, () => []) : null;
    const want = greedy && !withLogprobs ? "next_token" : "logits";
    const V = c.vocabSize;
    const timings: GenerationTimings = {
      backend: this.backend,
      rows,
      promptTokens: prompts.reduce((s, p) => s + p.length, 0),
      prefillMs: 0,
      decodeSteps: 0,
      decodeMs: 0,
      hostMs: 0,
      prefillTokensPerSecond: 0,
      decodeTokensPerSecond: 0,
    };

    let t0 = performance.now();
    let out = await this.#decoder.prefill(prompts, rowSource, want);
    timings.prefillMs = performance.now() - t0;
    for (;;) {
      t0 = performance.now();
      const events: StreamEvent[] = [];
      const next: number[] = new Array(rows).fill(padId);
      for (let r = 0; r < rows; r++) {
        if (finish[r]) continue;
        const id = out.nextTokens ? out.nextTokens[r] : sampleToken(out.logits!, sampling, rngs[r], r * V, V);
        generated[r].push(id);
        next[r] = id;
        const s = streams[r];
        const ev: StreamEvent = { index: r, prompt: rowSource[r], sample: r % K, tokenId: id, text: "" };
        if (logprobs) logprobs[r].push(ev.logprob = logSoftmaxAt(out.logits!, id, r * V, V));
        if (eos.has(id)) {
          finish[r] = "eos";
          ev.text = s.finish();
        } else {
          const d = s.push(id);
          ev.text = d.text;
          if (d.stopped) finish[r] = "stop";
          else if (generated[r].length >= maxNew) {
            finish[r] = "length";
            ev.text += s.finish();
          }
        }
        if (finish[r]) ev.finishReason = finish[r]!;
        events.push(ev);
      }
      timings.hostMs += performance.now() - t0;
      for (const ev of events) yield ev;
      if (finish.every((f) => f !== null)) break;
      t0 = performance.now();
      out = await this.#decoder.step(next, want);
      timings.decodeMs += performance.now() - t0;
      timings.decodeSteps++;
    }
    timings.prefillTokensPerSecond = timings.prefillMs > 0 ? timings.promptTokens / (timings.prefillMs / 1000) : 0;
    timings.decodeTokensPerSecond = timings.decodeMs > 0 ? (rows * timings.decodeSteps) / (timings.decodeMs / 1000) : 0;
    const sequences: GeneratedSequence[] = streams.map((s, r) => ({
      index: r,
      prompt: rowSource[r],
      sample: r % K,
      promptIds: prompts[rowSource[r]],
      tokenIds: generated[r],
      text: s.text,
      finishReason: finish[r]!,
      ...(logprobs ? { tokenLogprobs: logprobs[r], logprob: logprobs[r].reduce((a, b) => a + b, 0) } : {}),
    }));
    return { sequences, seed, sampling, timings };
  }
}

/** One prompt or a list: a list of numbers is one tokenized prompt. */
function normalizePrompts(prompt: Prompt | readonly Prompt[]): Prompt[] {
  if (typeof prompt === "string") return [prompt];
  if (!Array.isArray(prompt)) throw new TypeError("A prompt is a string, an array of token ids, or a list of those");
  if (prompt.length > 0 && prompt.every((x) => typeof x === "number")) return [prompt as readonly number[]];
  if (prompt.length === 0) throw new RangeError("No prompt given: the prompt list is empty");
  for (const [i, p] of prompt.entries()) {
    if (typeof p !== "string" && !(Array.isArray(p) && p.every((x) => typeof x === "number"))) {
      throw new TypeError(`Prompt ${i} must be a string or an array of token ids`);
    }
  }
  return prompt as Prompt[];
}

/**
 * Sampling settings: the caller's when it sets any of temperature, topK, topP; else the model's
 * `generation_config.json` when it says `do_sample: true` (with transformers' defaults temperature
 * 1, top_k 50, top_p 1); else greedy.
 */
export function resolveSampling(model: LoadedModel, o: SamplingOptions): Required<SamplingOptions> {
  let s: Required<SamplingOptions>;
  if (o.temperature !== undefined || o.topK !== undefined || o.topP !== undefined) {
    s = { temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1 };
  } else if (model.generation.doSample) {
    const g = model.generation;
    s = { temperature: g.temperature ?? 1, topK: g.topK ?? 50, topP: g.topP ?? 1 };
  } else {
    s = { temperature: 0, topK: 0, topP: 1 };
  }
  checkSamplingOptions(s);
  return s;
}

async function buildDecoder(
  engine: Engine,
  model: LoadedModel,
  adapter: LoraAdapter | null,
  merge: boolean,
): Promise<KvDecoder> {
  if (merge) {
    const m = adapter ? { ...model, weights: mergeAdapter(model.weights, adapter, model.config) } : model;
    return await KvDecoder.create(engine, m);
  }
  if (!adapter) return await KvDecoder.create(engine, model);
  const decoder = await KvDecoder.create(engine, model, { loraSlots: adapter.config });
  try {
    await decoder.setLoraFeeds(await loraFeeds(engine, decoder, adapter));
  } catch (e) {
    await decoder.release();
    throw e;
  }
  return decoder;
}

/**
 * Feeds of the LoRA slots: A as is and `s · B` (the slots run at scaling 1); zeros of rank 1 for
 * slots the adapter does not cover, or for every slot when the adapter is off.
 */
async function loraFeeds(
  engine: Engine,
  decoder: KvDecoder,
  adapter: LoraAdapter | null,
): Promise<Feeds> {
  const feeds: Record<string, OrtTensor> = {};
  const covered = new Set<string>();
  if (adapter) {
    const s = loraScaling(adapter.config);
    for (const t of loraTargets(decoder.model.config, adapter.config)) {
      const a = adapter.tensors.get(t.keyA)!, b = adapter.tensors.get(t.keyB)!;
      const bData = Float32Array.from(b.data as Float32Array, (x) => x * s);
      feeds[t.keyA] = engine.tensor(a.data as Float32Array, a.shape);
      feeds[t.keyB] = engine.tensor(bData, b.shape);
      covered.add(t.keyA).add(t.keyB);
    }
  }
  // One rank for every slot: ORT may bind the symbolic "lora_r" once per run.
  const r = adapter?.config.r ?? 1;
  for (const [key, shape] of decoder.loraInputs) {
    if (covered.has(key)) continue;
    const dims = shape.map((d) => (typeof d === "number" ? d : r));
    feeds[key] = engine.tensor(new Float32Array(dims[0] * dims[1]), dims);
  }
  return await uploadOnce(engine, feeds);
}
