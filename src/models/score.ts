/**
 * Sequence log-probabilities: `log π(completion | prompt)`, the quantity every preference loss is
 * built from, as a graph piece ({@link buildSequenceLogprobs}) and as a batched runner
 * ({@link Scorer}).
 *
 * log p(seq) = Σ over completion tokens t of `log_softmax(logits[t-1] / τ)[id_t]`, prompt tokens
 * masked, as TRL computes it. log-softmax is written as `s - logsumexp(s)` with `s = z - max(z)`
 * (not LogSoftmax, which the WebGPU EP runs on the CPU), and the target is picked with
 * GatherElements, whose gradient is a ScatterElements(add).
 *
 * @module
 */

import { Graph, GraphError, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { serializeModel } from "../onnx/serialize.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import type { BackendName } from "../runtime/ort.ts";
import { type Engine, engineFor, type GraphSession } from "../runtime/session.ts";
import { type LoraAdapter, validateAdapter } from "../lora/adapter.ts";
import type { LoadedModel } from "./load.ts";
import { buildHidden, type LoraAttachment } from "./forward.ts";
import { buildHeadSequenceLogprobs } from "./head_logprobs.ts";
import { halfDtypesFor } from "./half_dtypes.ts";
import type { BuildOptions } from "./layers.ts";

/**
 * Per-token log-probabilities `log_softmax(logits / τ)[target]`, `[B, T]`.
 *
 * @param logits float `[B, T, V]`
 * @param targets int64 `[B, T]`: the next token at each position (input ids shifted left); every
 *   entry must be a valid id, also where the mask is 0
 * @param temperature τ, a number or a float scalar value
 */
export function buildTokenLogprobs(g: Graph, logits: Value, targets: Value, temperature: number | Value = 1): Value {
  if (logits.shape.length !== 3) {
    throw new GraphError(`token log-probs: logits must be [B, T, V], got [${logits.shape}]`);
  }
  if (targets.dtype !== "int64" || targets.shape.length !== 2) {
    throw new GraphError(`token log-probs: targets must be int64 [B, T], got ${targets.dtype} [${targets.shape}]`);
  }
  let z = logits;
  if (typeof temperature !== "number") z = op.div(z, temperature);
  else if (temperature !== 1) {
    if (!(temperature > 0)) throw new RangeError(`temperature must be > 0, got ${temperature}`);
    z = op.div(z, g.scalar(temperature, logits.dtype));
  }
  const s = op.sub(z, op.reduceMax(z, [-1], true)); // max 0: the sum of exp is in [1, V]
  // log Σ_v e^s as Log(ReduceSum(Exp(s))): the same value (s <= 0, so the sum is in [1, V]), but ORT's
  // CPU ReduceLogSumExp runs element by element, ~5x slower than its vectorized Exp over [B, T, V]
  // on onnxruntime-node (as fast on wasm), and the backward reuses this Exp instead of recomputing
  // e^(s - lse) from s.
  const lse = op.log(op.reduceSum(op.exp(s), [-1], false)); // [B, T]
  const picked = op.squeeze(op.gatherElements(s, op.unsqueeze(targets, [-1]), -1), [-1]);
  return op.sub(picked, lse);
}

/**
 * Masked sums of token log-probs: `Σ_t mask[b, t] · log_softmax(logits[b, t] / τ)[targets[b, t]]`, `[B]`.
 *
 * @param mask float `[B, T]`, 1 on positions whose target is a completion token
 */
export function buildSequenceLogprobs(
  g: Graph,
  logits: Value,
  targets: Value,
  mask: Value,
  temperature: number | Value = 1,
): Value {
  const lp = buildTokenLogprobs(g, logits, targets, temperature);
  const m = mask.dtype === lp.dtype ? mask : op.cast(mask, lp.dtype);
  return op.reduceSum(op.mul(lp, m), [1]);
}

/** A prompt and a completion to score, as token ids. */
export interface ScoreSequence {
  promptIds: readonly number[];
  completionIds: readonly number[];
}

/** Options of {@link Scorer.create}. */
export interface ScorerOptions {
  /** Default "auto" (WebGPU on a hardware adapter, else wasm). */
  backend?: BackendPreference;
  /** CPU threads of a new engine (native-cpu intra-op threads; wasm threads). */
  threads?: number;
  /** A LoRA adapter to apply (unmerged); without it the base model is scored. */
  adapter?: LoraAdapter;
  /** An engine to reuse (its backend wins over `backend`). */
  engine?: Engine;
}

/** Options of {@link Scorer.score}. */
export interface ScoreOptions {
  /** τ in `log_softmax(logits / τ)`; default 1. */
  temperature?: number;
  /** Sequences per run; default 8. */
  batchSize?: number;
}

/**
 * Scores completions under a model (optionally with a LoRA adapter): one ONNX session, symbolic
 * batch and length, sequences sorted by length and right-padded per batch with an attention mask.
 */
export class Scorer {
  readonly backend: BackendName;
  /** Why this backend was taken. */
  readonly reason: string;
  readonly model: LoadedModel;
  #engine: Engine;
  #session: GraphSession;

  private constructor(model: LoadedModel, engine: Engine, session: GraphSession, reason: string) {
    this.model = model;
    this.#engine = engine;
    this.#session = session;
    this.backend = engine.backend;
    this.reason = reason;
  }

  /** Builds the scoring graph and its session. */
  static async create(model: LoadedModel, options: ScorerOptions = {}): Promise<Scorer> {
    const { engine, reason } = await engineFor(options);
    if (options.adapter) validateAdapter(options.adapter, model.config, "adapter");
    const g = buildScoringGraph(model, options.adapter, { halfDtypes: await halfDtypesFor(engine.backend) });
    // Weights go to external data: protobuf caps a model at 2 GB, and ORT loads the blob directly.
    const session = await engine.createSession(serializeModel(g, { externalDataThreshold: 1 << 20 }));
    return new Scorer(model, engine, session, reason);
  }

  /** Sum of completion-token log-probs of each sequence, in input order. */
  async score(seqs: readonly ScoreSequence[], options: ScoreOptions = {}): Promise<number[]> {
    const temperature = options.temperature ?? 1;
    if (!(temperature > 0) || !Number.isFinite(temperature)) {
      throw new RangeError(`temperature must be a positive number, got ${temperature}`);
    }
    const batchSize = options.batchSize ?? 8;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer`);
    const c = this.model.config;
    seqs.forEach((s, i) => {
      if (s.promptIds.length === 0) {
        throw new RangeError(`sequence ${i}: the prompt is empty; the first completion token needs a token before it`);
      }
      for (const id of [...s.promptIds, ...s.completionIds]) {
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
          throw new RangeError(`sequence ${i}: token id ${id} is outside the vocabulary [0, ${c.vocabSize})`);
        }
      }
      const len = s.promptIds.length + s.completionIds.length;
      if (c.arch === "gpt2" && len > c.maxPositions) {
        throw new RangeError(`sequence ${i}: ${len} tokens exceed the model's ${c.maxPositions} positions`);
      }
    });
    const order = seqs.map((_, i) => i).sort((a, b) => lengthOf(seqs[b]) - lengthOf(seqs[a]));
    const out = new Array<number>(seqs.length).fill(0);
    const pad = this.model.tokenizer.padId ?? this.model.generation.eosTokenIds[0] ?? 0;
    // On WebGPU every new shape compiles shaders: round lengths up and keep the batch size fixed.
    const gpu = this.#engine.spec.device === "gpu";
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.slice(start, start + batchSize);
      const rows = gpu ? Math.min(batchSize, order.length) : idx.length;
      const maxLen = Math.max(...idx.map((i) => lengthOf(seqs[i])));
      let T = gpu ? Math.ceil(maxLen / 8) * 8 : maxLen;
      if (c.arch === "gpt2") T = Math.min(T, c.maxPositions);
      const { ids, attentionMask: attn, targets, completionMask: mask } = packSequences(idx.map((i) => seqs[i]), {
        padId: pad,
        length: T,
        rows,
      });
      const e = this.#engine;
      const res = await this.#session.run({
        input_ids: e.tensor(ids, [rows, T]),
        attention_mask: e.tensor(attn, [rows, T]),
        targets: e.tensor(targets, [rows, T]),
        completion_mask: e.tensor(mask, [rows, T]),
        temperature: e.tensor(new Float32Array([temperature]), []),
      });
      const logps = res.logps.data as Float32Array;
      idx.forEach((si, r) => (out[si] = logps[r]));
    }
    return out;
  }

  /** Frees the session. */
  async release(): Promise<void> {
    await this.#session.release();
  }
}

/** A right-padded batch of prompt + completion sequences, as the scoring graph takes it. */
export interface PackedBatch {
  rows: number;
  length: number;
  /** int64 `[rows, length]`, padded with the pad id. */
  ids: BigInt64Array;
  /** int64 `[rows, length]`: 1 on real tokens. */
  attentionMask: BigInt64Array;
  /** int64 `[rows, length]`: the next token (pad id where there is none). */
  targets: BigInt64Array;
  /** float32 `[rows, length]`: 1 where the target is a completion token. */
  completionMask: Float32Array;
}

/**
 * Packs sequences into a right-padded batch: ids, attention mask, next-token targets and the
 * completion mask (position t is 1 when token t + 1 belongs to the completion). Rows beyond the
 * sequences (to keep a fixed batch shape) are all padding and contribute 0.
 */
export function packSequences(
  seqs: readonly ScoreSequence[],
  options: { padId: number; length?: number; rows?: number },
): PackedBatch {
  const rows = options.rows ?? seqs.length;
  const T = options.length ?? Math.max(...seqs.map(lengthOf));
  if (rows < seqs.length) throw new RangeError(`packSequences: ${seqs.length} sequences do not fit ${rows} rows`);
  const pad = BigInt(options.padId);
  const ids = new BigInt64Array(rows * T).fill(pad);
  const attentionMask = new BigInt64Array(rows * T);
  const targets = new BigInt64Array(rows * T).fill(pad);
  const completionMask = new Float32Array(rows * T);
  seqs.forEach((s, r) => {
    const all = [...s.promptIds, ...s.completionIds];
    if (all.length > T) throw new RangeError(`packSequences: a sequence of ${all.length} tokens exceeds length ${T}`);
    for (let t = 0; t < all.length; t++) {
      ids[r * T + t] = BigInt(all[t]);
      attentionMask[r * T + t] = 1n;
      if (t + 1 < all.length) {
        targets[r * T + t] = BigInt(all[t + 1]);
        if (t + 1 >= s.promptIds.length) completionMask[r * T + t] = 1;
      }
    }
  });
  return { rows, length: T, ids, attentionMask, targets, completionMask };
}

function lengthOf(s: ScoreSequence): number {
  return s.promptIds.length + s.completionIds.length;
}

/**
 * The scorer's graph: inputs `input_ids`, `attention_mask` (int64 `[batch, seq]`), `targets`
 * (int64), `completion_mask` (float32), `temperature` (float32 scalar); output `logps` `[batch]`.
 * Adapter tensors, if any, are initializers named by their PEFT keys.
 */
export function buildScoringGraph(model: LoadedModel, adapter?: LoraAdapter, build: BuildOptions = {}): Graph {
  const g = new Graph("score");
  const ids = g.input("input_ids", "int64", ["batch", "seq"]);
  const attn = g.input("attention_mask", "int64", ["batch", "seq"]);
  const targets = g.input("targets", "int64", ["batch", "seq"]);
  const mask = g.input("completion_mask", "float32", ["batch", "seq"]);
  const temperature = g.input("temperature", "float32", []);
  let lora: LoraAttachment | undefined;
  if (adapter) {
    const params = new Map<string, Value>();
    for (const [key, t] of adapter.tensors) params.set(key, g.initializer(key, t));
    lora = { config: adapter.config, params };
  }
  const { hidden, head, builder } = buildHidden(g, model, { inputIds: ids, attentionMask: attn }, lora, build);
  // The fused head: no [batch, seq, vocab] logits (see head_logprobs.ts).
  g.output(buildHeadSequenceLogprobs(builder, hidden, head, targets, mask, temperature), "logps");
  return g;
}
