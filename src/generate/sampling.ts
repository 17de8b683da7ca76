/**
 * Next-token choice from one row of logits: greedy, or sampling with temperature, top-k and top-p
 * (nucleus), with Hugging Face's semantics and order (temperature, then top-k, then top-p):
 *
 * - temperature τ: p ∝ exp(z / τ);
 * - top-k: keep the tokens whose logit is >= the k-th largest (ties at the boundary are kept, as
 *   `TopKLogitsWarper` does);
 * - top-p: among those, in descending probability, keep the smallest prefix whose cumulative
 *   probability reaches `top_p` — a token is kept when the mass strictly above it is < `top_p`
 *   (`TopPLogitsWarper` removes tokens with ascending cumulative mass <= 1 - top_p); always >= 1.
 *
 * Probabilities are computed in float64 from the float32 logits; the draw takes one uniform number
 * from a seeded {@link Rng}, so a seed reproduces the same tokens.
 *
 * @module
 */

import type { Rng } from "../util/rng.ts";

/** How the next token is chosen. */
export interface SamplingOptions {
  /** 0 means greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: no limit). */
  topK?: number;
  /** Nucleus sampling threshold in (0, 1] (1 or undefined: no limit). */
  topP?: number;
}

/** The tokens a sampler may draw and their probabilities (summing to 1). */
export interface Candidates {
  ids: Int32Array;
  probs: Float64Array;
}

/** Checks sampling options, naming the bad one. */
export function checkSamplingOptions(o: SamplingOptions): void {
  const t = o.temperature ?? 1;
  if (!(t >= 0) || !Number.isFinite(t)) throw new RangeError(`temperature must be a number >= 0, got ${t}`);
  if (o.topK !== undefined && (!Number.isInteger(o.topK) || o.topK < 0)) {
    throw new RangeError(`topK must be a non-negative integer, got ${o.topK}`);
  }
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) {
    throw new RangeError(`topP must be in (0, 1], got ${o.topP}`);
  }
}

/** True when the options mean greedy decoding (temperature 0). */
export function isGreedy(o: SamplingOptions): boolean {
  return (o.temperature ?? 1) === 0;
}

/** Index of the largest logit (the first one on ties, like `torch.argmax` and ONNX ArgMax). */
// Parameter types are spelled out here and below: JSR's declaration emitter (`deno publish`) cannot
// type a default that refers to another parameter.
export function argmax(logits: ArrayLike<number>, offset: number = 0, length: number = logits.length - offset): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < length; i++) {
    const v = logits[offset + i];
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * The candidate set and its probabilities after temperature, top-k and top-p: sorted by descending
 * probability (ties by ascending id) when top-p applies, else in ascending id order. With
 * temperature 0 it is the argmax alone.
 */
export function candidates(
  logits: ArrayLike<number>,
  options: SamplingOptions = {},
  offset: number = 0,
  length: number = logits.length - offset,
): Candidates {
  checkSamplingOptions(options);
  const t = options.temperature ?? 1;
  if (t === 0) return { ids: Int32Array.of(argmax(logits, offset, length)), probs: Float64Array.of(1) };
  const k = options.topK && options.topK < length ? options.topK : length;
  // Order ids by descending logit. A full sort is O(V log V); with a small k, select first.
  let order: number[];
  if (k < length) {
    const threshold = kthLargest(logits, offset, length, k);
    order = [];
    for (let i = 0; i < length; i++) if (logits[offset + i] >= threshold) order.push(i);
  } else {
    order = Array.from({ length }, (_, i) => i);
  }
  const topP = options.topP ?? 1;
  // Only top-p needs the order; plain temperature sampling walks the ids as they are (no O(V log V) sort).
  let max = -Infinity;
  if (topP < 1) {
    order.sort((a, b) => logits[offset + b] - logits[offset + a] || a - b);
    max = logits[offset + order[0]];
  } else for (const i of order) max = Math.max(max, logits[offset + i]);
  const probs = new Float64Array(order.length);
  let sum = 0;
  for (let i = 0; i < order.length; i++) {
    const p = Math.exp((logits[offset + order[i]] - max) / t);
    probs[i] = p;
    sum += p;
  }
  for (let i = 0; i < probs.length; i++) probs[i] /= sum;
  let keep = probs.length;
  if (topP < 1) {
    let above = 0;
    keep = 0;
    while (keep < probs.length && (keep === 0 || above < topP)) above += probs[keep++];
    let kept = 0;
    for (let i = 0; i < keep; i++) kept += probs[i];
    for (let i = 0; i < keep; i++) probs[i] /= kept;
  }
  return { ids: Int32Array.from(order.slice(0, keep)), probs: probs.slice(0, keep) };
}

/** The k-th largest value (1-based) of a row, by quickselect on a copy. */
function kthLargest(logits: ArrayLike<number>, offset: number, length: number, k: number): number {
  const a = new Float64Array(length);
  for (let i = 0; i < length; i++) a[i] = logits[offset + i];
  let lo = 0, hi = length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] > pivot) i++;
      while (a[j] < pivot) j--;
      if (i <= j) {
        const tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}

/**
 * `log_softmax(logits)[id]` of one row, in float64: `z_id − max − log Σ exp(z − max)`. The model's
 * own distribution (temperature 1, nothing cut), as the scorer's graph computes it.
 */
export function logSoftmaxAt(
  logits: ArrayLike<number>,
  id: number,
  offset: number = 0,
  length: number = logits.length - offset,
): number {
  if (!(Number.isInteger(id) && id >= 0 && id < length)) {
    throw new RangeError(`token id ${id} is outside [0, ${length})`);
  }
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(logits[offset + i] - max);
  return logits[offset + id] - max - Math.log(sum);
}

/** Draws one id from candidates with one uniform number from `rng`. */
export function draw(c: Candidates, rng: Rng): number {
  const u = rng.next();
  let acc = 0;
  for (let i = 0; i < c.ids.length; i++) {
    acc += c.probs[i];
    if (u < acc) return c.ids[i];
  }
  return c.ids[c.ids.length - 1]; // u within rounding of 1
}

/**
 * Chooses the next token of one row: argmax when greedy (no random number is used), else a draw
 * from {@link candidates}.
 */
export function sampleToken(
  logits: ArrayLike<number>,
  options: SamplingOptions,
  rng: Rng,
  offset: number = 0,
  length: number = logits.length - offset,
): number {
  if (isGreedy(options)) return argmax(logits, offset, length);
  return draw(candidates(logits, options, offset, length), rng);
}
