/**
 * Held-out evaluation of an adapter on preference pairs, with the training metrics' names: the
 * policy (base + adapter) and the reference (base) score every chosen and rejected completion,
 * u = log π_θ − log π_ref, and TRL's rewards/* and logps/* follow.
 *
 * Before any training the policy equals the reference, so u = 0: rewards/accuracies is 0 (TRL
 * counts u_w > u_l strictly) and the margins are 0. `logps/accuracy` — how often the policy itself
 * gives the chosen completion the higher log-prob — is reported too, since it is meaningful for
 * the base model as well.
 *
 * @module
 */

import type { EncodedPair } from "../data/encode.ts";
import type { LoraAdapter } from "../lora/adapter.ts";
import { pairMetrics } from "../losses/metrics.ts";
import type { LoadedModel } from "../models/load.ts";
import { Scorer, type ScoreSequence } from "../models/score.ts";
import type { Engine } from "../runtime/session.ts";

/** Pair metrics on held-out data. */
export interface PairEvaluation {
  pairs: number;
  "rewards/chosen": number;
  "rewards/rejected": number;
  "rewards/accuracies": number;
  "rewards/margins": number;
  "logps/chosen": number;
  "logps/rejected": number;
  /** Fraction of pairs where the policy's log p(chosen) > log p(rejected). */
  "logps/accuracy": number;
}

/** Options of {@link evaluatePairs}. */
export interface EvaluateOptions {
  engine: Engine;
  /** β_π of the implicit reward (default 0.1). */
  beta?: number;
  /** Logit temperature (default 1). */
  temperature?: number;
  /** Reference log-probs already computed (2 per pair: chosen, rejected), to skip the base pass. */
  reference?: Float64Array;
}

function sequences(pairs: readonly EncodedPair[]): ScoreSequence[] {
  return pairs.flatMap((p) => [
    { promptIds: p.promptIds, completionIds: p.chosenIds },
    { promptIds: p.promptIds, completionIds: p.rejectedIds },
  ]);
}

/** Log-probs of every chosen and rejected completion (interleaved), with or without an adapter. */
export async function scorePairs(
  model: LoadedModel,
  pairs: readonly EncodedPair[],
  adapter: LoraAdapter | null,
  options: { engine: Engine; temperature?: number },
): Promise<Float64Array> {
  const scorer = await Scorer.create(model, { engine: options.engine, adapter: adapter ?? undefined });
  try {
    return Float64Array.from(
      await scorer.score(sequences(pairs), { temperature: options.temperature ?? 1, batchSize: 16 }),
    );
  } finally {
    await scorer.release();
  }
}

/** Evaluates `adapter` (null: the base model itself) on preference pairs. */
export async function evaluatePairs(
  model: LoadedModel,
  pairs: readonly EncodedPair[],
  adapter: LoraAdapter | null,
  options: EvaluateOptions,
): Promise<PairEvaluation> {
  const ref = options.reference ?? await scorePairs(model, pairs, null, options);
  const pol = adapter ? await scorePairs(model, pairs, adapter, options) : ref;
  const n = pairs.length;
  const uChosen = new Float64Array(n), uRejected = new Float64Array(n);
  const logpChosen = new Float64Array(n), logpRejected = new Float64Array(n);
  let wins = 0;
  for (let i = 0; i < n; i++) {
    logpChosen[i] = pol[2 * i];
    logpRejected[i] = pol[2 * i + 1];
    uChosen[i] = pol[2 * i] - ref[2 * i];
    uRejected[i] = pol[2 * i + 1] - ref[2 * i + 1];
    if (logpChosen[i] > logpRejected[i]) wins++;
  }
  const m = pairMetrics({ uChosen, uRejected, logpChosen, logpRejected }, { betaPi: options.beta ?? 0.1 });
  return {
    pairs: n,
    "rewards/chosen": m["rewards/chosen"],
    "rewards/rejected": m["rewards/rejected"],
    "rewards/accuracies": m["rewards/accuracies"],
    "rewards/margins": m["rewards/margins"],
    "logps/chosen": m["logps/chosen"],
    "logps/rejected": m["logps/rejected"],
    "logps/accuracy": wins / Math.max(1, n),
  };
}
