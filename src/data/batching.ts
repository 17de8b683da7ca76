/**
 * Batches for training: a seeded "bucket by length" sampler that limits padding, a cursor to resume
 * exactly where a run stopped, and right-padding into the arrays a training step takes.
 *
 * @module
 */

import { Rng } from "../util/rng.ts";
import type { EncodedCompletion, EncodedGroup, EncodedPair, EncodedPrompt } from "./encode.ts";

/** Where a run is in its data: the next batch to take is batch `batchIndex` of epoch `epoch`. */
export interface DataCursor {
  epoch: number;
  batchIndex: number;
}

/** Options of {@link epochBatches} and {@link BatchSampler}. */
export interface BatchOptions {
  /** Examples per batch. */
  batchSize: number;
  /** Seed of the shuffles; with the epoch it fixes every batch. */
  seed: number;
  /**
   * How many batches' worth of examples are sorted by length together. Larger means less padding
   * and less randomness in batch composition; 1 gives plain random batches. Default 50.
   */
  bucketBatches?: number;
  /** Drop the one smaller batch an epoch may end with. Default false. */
  dropLast?: boolean;
  /**
   * False: no shuffling and no bucketing; every epoch takes consecutive `batchSize` examples in
   * index order (the order data arrives in, as an online tuner takes it). Default true.
   */
  shuffle?: boolean;
}

/** The token length a padded example occupies: the prompt plus its longest completion. */
export function exampleLength(e: EncodedPair | EncodedGroup | EncodedCompletion | EncodedPrompt): number {
  if ("chosenIds" in e) return e.promptIds.length + Math.max(e.chosenIds.length, e.rejectedIds.length);
  if ("rewards" in e) return e.promptIds.length + e.completionIds.reduce((m, c) => Math.max(m, c.length), 0);
  if ("completionIds" in e) return e.promptIds.length + e.completionIds.length;
  return e.promptIds.length;
}

/** A seed for one epoch, so each epoch's batches can be made on their own (no state to carry). */
function epochSeed(seed: number, epoch: number): number {
  // Two splitmix32-style finalizer rounds over (seed, epoch): distinct epochs give unrelated streams.
  let z = (Math.imul((seed >>> 0) ^ Math.floor(seed / 2 ** 32), 0x9e3779b1) ^ epoch) >>> 0;
  for (let i = 0; i < 2; i++) {
    z = (z + 0x9e3779b9) >>> 0;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
  }
  return z;
}

/**
 * The batches of one epoch, as lists of example indices. The standard bucket-by-length sampler:
 * shuffle all examples, cut them into chunks of `bucketBatches * batchSize`, sort each chunk by
 * length, cut chunks into batches, then shuffle the order of the batches. A pure function of
 * (lengths, seed, epoch, options), which is what makes resuming exact.
 */
export function epochBatches(lengths: readonly number[], epoch: number, options: BatchOptions): number[][] {
  const { batchSize, seed } = options;
  const bucketBatches = options.bucketBatches ?? 50;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(bucketBatches) || bucketBatches < 1) {
    throw new RangeError(`bucketBatches must be a positive integer, got ${bucketBatches}`);
  }
  if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`epoch must be a non-negative integer, got ${epoch}`);
  if (options.shuffle === false) {
    const batches: number[][] = [];
    for (let i = 0; i < lengths.length; i += batchSize) {
      batches.push(Array.from({ length: Math.min(batchSize, lengths.length - i) }, (_, j) => i + j));
    }
    if (options.dropLast && batches.length > 0 && batches[batches.length - 1].length < batchSize) batches.pop();
    return batches;
  }
  const rng = new Rng(epochSeed(seed, epoch));
  const order = rng.shuffle(Array.from(lengths, (_, i) => i));
  const chunk = batchSize * bucketBatches;
  const batches: number[][] = [];
  for (let start = 0; start < order.length; start += chunk) {
    // Stable sort: ties keep their shuffled order.
    const part = order.slice(start, start + chunk).sort((a, b) => lengths[a] - lengths[b]);
    for (let i = 0; i < part.length; i += batchSize) batches.push(part.slice(i, i + batchSize));
  }
  if (options.dropLast && batches.length > 0 && batches[batches.length - 1].length < batchSize) batches.pop();
  return rng.shuffle(batches);
}

/**
 * Walks the batches of epoch after epoch from a {@link DataCursor}. A run that saves the cursor and
 * resumes from it takes the same batches in the same order as one that never stopped.
 *
 * @example
 * ```ts
 * const sampler = new BatchSampler([5, 9, 7, 3], { batchSize: 2, seed: 1 });
 * let cursor = { epoch: 0, batchIndex: 0 };
 * const first = sampler.batchAt(cursor); // two example indices
 * cursor = sampler.advance(cursor);
 * ```
 */
export class BatchSampler {
  readonly lengths: readonly number[];
  readonly options: BatchOptions;
  /** Batches in every epoch. */
  readonly batchesPerEpoch: number;
  #epoch = -1;
  #batches: number[][] = [];

  constructor(lengths: readonly number[], options: BatchOptions) {
    if (lengths.length === 0) throw new RangeError("cannot batch an empty dataset");
    this.lengths = lengths.slice();
    this.options = { ...options };
    const n = lengths.length, b = options.batchSize;
    this.batchesPerEpoch = options.dropLast ? Math.floor(n / b) : Math.ceil(n / b);
    if (this.batchesPerEpoch === 0) {
      throw new RangeError(`the dataset has ${n} examples, fewer than one batch of ${b} with dropLast`);
    }
  }

  /** All batches of an epoch (cached for the current epoch). */
  epoch(epoch: number): number[][] {
    if (epoch !== this.#epoch) {
      this.#batches = epochBatches(this.lengths, epoch, this.options);
      this.#epoch = epoch;
    }
    return this.#batches;
  }

  /** The example indices of the batch a cursor points at. */
  batchAt(cursor: DataCursor): number[] {
    if (!Number.isInteger(cursor.batchIndex) || cursor.batchIndex < 0 || cursor.batchIndex >= this.batchesPerEpoch) {
      throw new RangeError(
        `batchIndex ${cursor.batchIndex} is outside epoch ${cursor.epoch} (${this.batchesPerEpoch} batches)`,
      );
    }
    return this.epoch(cursor.epoch)[cursor.batchIndex].slice();
  }

  /** The cursor after taking the batch at `cursor`. */
  advance(cursor: DataCursor): DataCursor {
    return cursor.batchIndex + 1 < this.batchesPerEpoch
      ? { epoch: cursor.epoch, batchIndex: cursor.batchIndex + 1 }
      : { epoch: cursor.epoch + 1, batchIndex: 0 };
  }

  /** Batches from `from` on, forever (the caller stops); each with the cursor that points after it. */
  *iterate(from: DataCursor = { epoch: 0, batchIndex: 0 }): Generator<{ batch: number[]; cursor: DataCursor }> {
    let cursor = from;
    for (;;) {
      const batch = this.batchAt(cursor);
      cursor = this.advance(cursor);
      yield { batch, cursor };
    }
  }
}

/** One sequence to pad: the prompt and the completion whose tokens are scored. */
export interface Sequence {
  promptIds: readonly number[];
  completionIds: readonly number[];
}

/** Options of {@link padBatch}. */
export interface PadOptions {
  /** Round the padded length up to a multiple of this, to limit the number of distinct shapes. Default 8. */
  padMultiple?: number;
  /** Never pad beyond this (the model's context: positions past it do not exist). */
  maxLength?: number;
  /** Id written at padded positions of `inputIds`. Default 0 (masked out, so any valid id works). */
  padId?: number;
  /** Element type of `inputIds`, `attentionMask` and `targets`. Default "int64". */
  intType?: "int64" | "int32";
  /** Element type of `completionMask` (and group rewards). Default "float32". */
  floatType?: "float32" | "float64";
}

/** Right-padded arrays of a batch, all row-major `[rows, length]`. */
export interface PaddedBatch {
  rows: number;
  /** T: the padded length. */
  length: number;
  /** Token ids, padded with `padId`. */
  inputIds: BigInt64Array | Int32Array;
  /** 1 at real tokens, 0 at padding. */
  attentionMask: BigInt64Array | Int32Array;
  /** `inputIds` shifted left by one: the token each position predicts; 0 where there is none. */
  targets: BigInt64Array | Int32Array;
  /** 1 where the TARGET token is a completion token, else 0: sum of logp(targets) * mask = log p(completion | prompt). */
  completionMask: Float32Array | Float64Array;
  /** Unpadded length of each row. */
  rowLengths: number[];
}

/**
 * Right-pads sequences into one batch. Row r holds `prompt + completion`, then padding; `targets[r, t]`
 * is the token at t + 1 and `completionMask[r, t]` is 1 for t in [P - 1, P + C - 1) (the positions
 * whose next token is a completion token).
 */
export function padBatch(seqs: readonly Sequence[], options: PadOptions = {}): PaddedBatch {
  const padMultiple = options.padMultiple ?? 8;
  if (!Number.isInteger(padMultiple) || padMultiple < 1) {
    throw new RangeError(`padMultiple must be a positive integer, got ${padMultiple}`);
  }
  if (seqs.length === 0) throw new RangeError("cannot pad an empty batch");
  const rowLengths = seqs.map((s) => s.promptIds.length + s.completionIds.length);
  const longest = Math.max(...rowLengths);
  let length = Math.ceil(longest / padMultiple) * padMultiple;
  if (options.maxLength !== undefined) {
    if (longest > options.maxLength) {
      throw new RangeError(
        `a sequence of ${longest} tokens is longer than maxLength ${options.maxLength}: truncate first`,
      );
    }
    length = Math.min(length, options.maxLength);
  }
  const rows = seqs.length, n = rows * length;
  const int64 = (options.intType ?? "int64") === "int64";
  const ids = new Int32Array(n).fill(options.padId ?? 0), attention = new Int32Array(n), targets = new Int32Array(n);
  const completionMask = (options.floatType ?? "float32") === "float64" ? new Float64Array(n) : new Float32Array(n);
  seqs.forEach((s, r) => {
    const base = r * length, p = s.promptIds.length, len = rowLengths[r];
    for (let t = 0; t < p; t++) ids[base + t] = s.promptIds[t];
    for (let t = 0; t < s.completionIds.length; t++) ids[base + p + t] = s.completionIds[t];
    for (let t = 0; t < len; t++) attention[base + t] = 1;
    for (let t = 0; t + 1 < len; t++) targets[base + t] = ids[base + t + 1];
    for (let t = Math.max(0, p - 1); t + 1 < len; t++) completionMask[base + t] = 1;
  });
  const cast = (a: Int32Array) => (int64 ? BigInt64Array.from(a, (x) => BigInt(x)) : a);
  return {
    rows,
    length,
    inputIds: cast(ids),
    attentionMask: cast(attention),
    targets: cast(targets),
    completionMask,
    rowLengths,
  };
}

/**
 * Pads B preference pairs into one `[2B, T]` batch, chosen rows first (rows 0..B-1 are the chosen
 * sequences, rows B..2B-1 the rejected ones in the same order), so one forward pass scores both.
 */
export function padPairs(pairs: readonly EncodedPair[], options: PadOptions = {}): PaddedBatch {
  return padBatch([
    ...pairs.map((p) => ({ promptIds: p.promptIds, completionIds: p.chosenIds })),
    ...pairs.map((p) => ({ promptIds: p.promptIds, completionIds: p.rejectedIds })),
  ], options);
}

/** A padded batch of reward groups, with the rewards. */
export interface PaddedGroups extends PaddedBatch {
  /** K: completions per group. Row `b * K + k` is completion k of group b. */
  groupSize: number;
  /** Rewards `[B, K]`. */
  rewards: Float32Array | Float64Array;
}

/** Pads B reward groups of K completions into one `[B*K, T]` batch; row `b * K + k` is completion k of group b. */
export function padGroups(groups: readonly EncodedGroup[], options: PadOptions = {}): PaddedGroups {
  if (groups.length === 0) throw new RangeError("cannot pad an empty batch");
  const k = groups[0].completionIds.length;
  const odd = groups.find((g) => g.completionIds.length !== k);
  if (odd) {
    throw new RangeError(
      `every group of a batch needs ${k} completions; line ${odd.line} has ${odd.completionIds.length}`,
    );
  }
  const batch = padBatch(
    groups.flatMap((g) => g.completionIds.map((c) => ({ promptIds: g.promptIds, completionIds: c }))),
    options,
  );
  const flat = groups.flatMap((g) => g.rewards);
  const rewards = (options.floatType ?? "float32") === "float64" ? Float64Array.from(flat) : Float32Array.from(flat);
  return { ...batch, groupSize: k, rewards };
}
