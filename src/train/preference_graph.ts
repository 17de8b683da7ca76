/**
 * The forward half of a preference-training step: policy log-probs of every sequence in a batch
 * (the base model with LoRA parameters as graph inputs), log-ratios u = log π_θ − log π_ref against
 * cached reference log-probs, and one of the four losses with TRL-named metrics.
 *
 * Batch layout (see `src/data/batching.ts`): pairs are `[2B, T]` rows, the B chosen rows first,
 * then the B rejected rows; reward groups are `[B·K, T]` rows, group-major. Batch and length are
 * symbolic, so one compiled step serves every bucket.
 *
 * @module
 */

import { Graph, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import type { LoadedModel } from "../models/load.ts";
import { buildHidden } from "../models/forward.ts";
import type { BuildOptions } from "../models/layers.ts";
import { buildHeadSequenceLogprobs } from "../models/head_logprobs.ts";
import type { LoraConfig } from "../lora/config.ts";
import { loraTargets } from "../lora/targets.ts";
import { emitDpoPref, emitDpoRw, emitExoPref, emitExoRw } from "../losses/mod.ts";
import { emitGroupMetrics, emitPairMetrics } from "../losses/metrics.ts";

/** The four preference losses. */
export type LossKind = "exo-pref" | "exo-rw" | "dpo-pref" | "dpo-rw";

/** All loss kinds, for validation and help text. */
export const LOSS_KINDS: readonly LossKind[] = ["exo-pref", "exo-rw", "dpo-pref", "dpo-rw"];

/** True for the losses that take reward groups (K completions) rather than pairs. */
export function isRewardLoss(loss: LossKind): boolean {
  return loss === "exo-rw" || loss === "dpo-rw";
}

/** Hyper-parameters of the loss part of the graph. */
export interface PreferenceLossOptions {
  loss: LossKind;
  /** β_π (TRL's `beta`). */
  betaPi: number;
  /** β_r (reward losses). */
  betaR: number;
  /** ε (EXO-pref label smoothing). */
  eps: number;
  /** Logit temperature τ applied before the token log-softmax. */
  temperature: number;
  /** Completions per group (reward losses only). */
  k?: number;
}

/** The graph and the values the step compiler needs. */
export interface PreferenceGraph {
  graph: Graph;
  /** Trainable LoRA parameters (graph inputs named by their PEFT keys), in target order. */
  params: Value[];
  /** The scalar batch loss. */
  loss: Value;
  /** TRL-named scalar metrics (rewards/chosen, ...). */
  metrics: Record<string, Value>;
  /** Names of the data inputs the trainer feeds each step. */
  dataInputs: string[];
}

/** Names of the data inputs. */
export const INPUT = {
  inputIds: "input_ids",
  attentionMask: "attention_mask",
  targets: "targets",
  completionMask: "completion_mask",
  refLogps: "ref_logps",
  rewards: "rewards",
} as const;

/**
 * Builds forward + loss for preference training. Frozen weights are initializers; the LoRA
 * parameters are float32 graph inputs, named by their PEFT keys unless `paramName` renames them
 * (ORT training artifacts in Python's layout carry PEFT's in-memory names, `lora_A.default.weight`).
 * `build` chooses how weights are read and whether layers are recomputed (see `BuildOptions`).
 */
export function buildPreferenceGraph(
  model: LoadedModel,
  lora: LoraConfig,
  o: PreferenceLossOptions,
  build: BuildOptions = {},
  paramName: (peftKey: string) => string = (key) => key,
): PreferenceGraph {
  const g = new Graph("preference_step");
  const ids = g.input(INPUT.inputIds, "int64", ["rows", "seq"]);
  const mask = g.input(INPUT.attentionMask, "int64", ["rows", "seq"]);
  const targets = g.input(INPUT.targets, "int64", ["rows", "seq"]);
  const cmask = g.input(INPUT.completionMask, "float32", ["rows", "seq"]);
  const ref = g.input(INPUT.refLogps, "float32", ["rows"]);
  const dataInputs: string[] = [
    INPUT.inputIds,
    INPUT.attentionMask,
    INPUT.targets,
    INPUT.completionMask,
    INPUT.refLogps,
  ];

  const params: Value[] = [];
  const map = new Map<string, Value>();
  for (const t of loraTargets(model.config, lora)) {
    const a = g.input(paramName(t.keyA), "float32", [lora.r, t.inFeatures]);
    const b = g.input(paramName(t.keyB), "float32", [t.outFeatures, lora.r]);
    map.set(t.keyA, a);
    map.set(t.keyB, b);
    params.push(a, b);
  }
  const { hidden, head, builder } = buildHidden(g, model, { inputIds: ids, attentionMask: mask }, {
    config: lora,
    params: map,
  }, build);
  // The fused head keeps no [rows, seq, vocab] logits for the backward pass (see head_logprobs.ts).
  const policy = buildHeadSequenceLogprobs(builder, hidden, head, targets, cmask, o.temperature); // [rows]
  const u = op.sub(policy, ref);
  const hyper = { betaPi: o.betaPi, betaR: o.betaR, eps: o.eps };

  let loss: Value;
  let metrics: Record<string, Value>;
  if (!isRewardLoss(o.loss)) {
    // [2B] -> [2, B]: row 0 chosen, row 1 rejected (one reshape each, so both halves share a dim).
    const at = (i: number) => g.constant(new BigInt64Array([BigInt(i)]), [], "int64");
    const u2 = op.reshape(u, [2, -1]);
    const lp2 = op.reshape(policy, [2, -1]);
    const uw = op.gather(u2, at(0), 0), ul = op.gather(u2, at(1), 0);
    const emitted = o.loss === "exo-pref" ? emitExoPref(uw, ul, hyper) : emitDpoPref(uw, ul, hyper);
    loss = emitted.loss;
    metrics = emitPairMetrics(
      { uChosen: uw, uRejected: ul, logpChosen: op.gather(lp2, at(0), 0), logpRejected: op.gather(lp2, at(1), 0) },
      { betaPi: o.betaPi },
    );
  } else {
    const k = o.k;
    if (!k || k < 2) throw new RangeError(`reward losses need K >= 2 completions per group, got ${k}`);
    // u and the policy log-probs go through ONE reshape ([2, rows] -> [2, groups, K]) so both get the
    // same symbolic group dim, and the rewards input takes it too, so all three broadcast together.
    const at = (i: number) => g.constant(new BigInt64Array([BigInt(i)]), [], "int64");
    const both = op.reshape(op.concat([op.unsqueeze(u, [0]), op.unsqueeze(policy, [0])], 0), [2, -1, k]);
    const ug = op.gather(both, at(0), 0), lpg = op.gather(both, at(1), 0);
    const rewards = g.input(INPUT.rewards, "float32", [ug.shape[0], k]);
    dataInputs.push(INPUT.rewards);
    const emitted = o.loss === "exo-rw" ? emitExoRw(ug, rewards, hyper) : emitDpoRw(ug, rewards, hyper);
    loss = emitted.loss;
    metrics = emitGroupMetrics({ u: ug, rewards, logp: lpg }, { betaPi: o.betaPi });
  }
  return { graph: g, params, loss, metrics, dataInputs };
}
