/**
 * The forward graph of a causal LM, whatever its family: token ids (plus optional attention mask,
 * positions and KV cache) in, logits and the new KV cache out. The family's spec (registry.ts)
 * builds the decoder stack; this module builds what every family shares around it: positions, the
 * attention masks and the LM head.
 *
 * Batch and sequence sizes stay symbolic (the dims of `inputIds`, e.g. `"batch"`, `"seq"`, and the
 * past length `"past"`), so one ONNX session serves every shape. The causal, padding and
 * sliding-window masks are built in the graph as one additive bias of `0` / `-1e9` per kind of
 * layer: a finite value, so a query row whose keys are all padding gets a uniform softmax instead
 * of NaN.
 *
 * A layer with a sliding window of W tokens attends from query position q to keys `q - W < k <= q`.
 * Its part of the cache may be shorter than the whole past (generation keeps its last `W - 1`
 * keys): the layer's keys are then the last `past_i + T` columns, and its mask the matching tail
 * of `[zeros(past_i) | attentionMask]` (slots before the first token are masked).
 *
 * @module
 */

import { addDims, type Dim, sameDim, subDims } from "../onnx/dims.ts";
import type { Graph, Value } from "../onnx/graph.ts";
import { GraphError } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import type { FamilyInputs } from "./arch.ts";
import {
  type AttentionDims,
  type BuildOptions,
  flatten,
  type LayerAttention,
  ModelBuilder,
  softcap,
} from "./layers.ts";
import type { LoadedModel, LoraAttachment } from "./model.ts";
import { familyOf } from "./registry.ts";

export type { LoraAttachment } from "./model.ts";

/** Inputs of {@link buildForward}. */
export interface ForwardInputs {
  /** int64 `[B, T]`. */
  inputIds: Value;
  /** int64 `[B, P + T]`: 1 = real token, 0 = padding. Without it every key is attended (causally). */
  attentionMask?: Value;
  /** int64 `[B or 1, T]`; default `P + [0, T)` (right padding needs nothing else; left padding passes its own). */
  positionIds?: Value;
  /**
   * Per layer, `[B, kvHeads, P_i, headDim]` keys (after RoPE) and values of the earlier tokens:
   * `P_i = P` for full-attention layers; a sliding-window layer may hold only the last `P_i` of them.
   */
  past?: { key: Value; value: Value }[];
  /** `"last"`: logits of the last position only (`[B, 1, V]`, for decoding); default `"all"`. */
  logitsPositions?: "all" | "last";
}

/** Outputs of {@link buildHidden}. */
export interface HiddenOutputs {
  /** Per layer, keys and values including the past, `[B, kvHeads, P_i + T, headDim]`. */
  present: { key: Value; value: Value }[];
  /** The final hidden states `[B, T, hidden]` (after the last norm), before the LM head. */
  hidden: Value;
  /** The LM head's weight name: `[vocab, hidden]` as stored (the embedding when tied). */
  head: string;
  /** The builder that holds the graph's weights (for LM-head pieces built by the caller). */
  builder: ModelBuilder;
}

/** Outputs of {@link buildForward}. */
export interface ForwardOutputs extends HiddenOutputs {
  /** float32 `[B, T, V]` (`[B, 1, V]` with `logitsPositions: "last"`). */
  logits: Value;
}

/** The additive bias of masked keys. */
const NEG = -1e9;

/**
 * Builds the forward pass of `model` into `g`, logits included. Frozen weights become
 * initializers named after the Hugging Face weights (shared when the same graph builds several
 * passes, e.g. policy and reference); LoRA parameters are whatever values the caller passes.
 */
export function buildForward(
  g: Graph,
  model: LoadedModel,
  inputs: ForwardInputs,
  lora?: LoraAttachment,
  options: BuildOptions = {},
): ForwardOutputs {
  const out = buildHidden(g, model, inputs, lora, options);
  const last = inputs.logitsPositions === "last" ? op.slice(out.hidden, [-1], [op.TO_END], [1]) : out.hidden;
  return { ...out, logits: lmHead(out.builder, last, out.head) };
}

/**
 * The logits of hidden states `[..., hidden]`: `h Wᵀ` with the stored head `[vocab, hidden]`,
 * soft-capped when the config sets `logitSoftcap`.
 */
export function lmHead(mb: ModelBuilder, hidden: Value, head: string): Value {
  const { flat, restore } = flatten(hidden);
  const c = mb.model.config;
  const logits = op.gemm(flat, mb.weight32(head, flat), null, { transB: true });
  return restore(c.logitSoftcap ? softcap(logits, c.logitSoftcap) : logits, c.vocabSize);
}

/**
 * The forward pass up to the final hidden states, without the LM head: for callers that turn the
 * hidden states into something smaller than the full logits (sequence log-probs, see score.ts).
 */
export function buildHidden(
  g: Graph,
  model: LoadedModel,
  inputs: ForwardInputs,
  lora?: LoraAttachment,
  options: BuildOptions = {},
): HiddenOutputs {
  const c = model.config;
  const family = familyOf(c);
  const windows = family.attentionWindows(c);
  const ids = inputs.inputIds;
  if (ids.graph !== g) throw new GraphError("buildForward: inputIds belongs to another graph");
  if (ids.dtype !== "int64" || ids.shape.length !== 2) {
    throw new GraphError(`buildForward: inputIds must be int64 [B, T], got ${ids.dtype} [${ids.shape}]`);
  }
  const [batch, seq] = ids.shape;
  const past = inputs.past;
  const mask = inputs.attentionMask;
  const P = pastLength(inputs, windows, c.numLayers, seq);
  const total = addDims(P, seq);
  if (past) {
    for (const [i, p] of past.entries()) {
      for (const v of [p.key, p.value]) {
        const ok = v.shape.length === 4 && v.shape[0] === batch && v.shape[1] === c.numKvHeads &&
          v.shape[3] === c.headDim && v.shape[2] === p.key.shape[2] && v.dtype === "float32" &&
          (windows[i] !== null || v.shape[2] === P);
        if (!ok) {
          throw new GraphError(
            `buildForward: past[${i}] must be float32 [${batch}, ${c.numKvHeads}, ${
              windows[i] === null ? P : "past"
            }, ${c.headDim}], got ${v.dtype} [${v.shape}]`,
          );
        }
      }
    }
  }
  if (
    mask && (mask.dtype !== "int64" || mask.shape.length !== 2 || mask.shape[0] !== batch || mask.shape[1] !== total)
  ) {
    throw new GraphError(
      `buildForward: attentionMask must be int64 [${batch}, ${total}] (past + new tokens), got ${mask.dtype} [${mask.shape}]`,
    );
  }

  // Positions of the new tokens in the whole sequence: P + [0, T).
  const queryPos = op.arange(g, P, seq); // [T]
  let positions = op.unsqueeze(queryPos, [0]);
  if (inputs.positionIds) {
    const p = inputs.positionIds;
    if (
      p.dtype !== "int64" || p.shape.length !== 2 || p.shape[1] !== seq || (p.shape[0] !== 1 && p.shape[0] !== batch)
    ) {
      throw new GraphError(
        `buildForward: positionIds must be int64 [1 or ${batch}, ${seq}], got ${p.dtype} [${p.shape}]`,
      );
    }
    positions = p;
  }

  const dimsOf = (pastLen: Dim): AttentionDims => ({
    batch,
    seq,
    past: pastLen,
    total: addDims(pastLen, seq),
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
  });
  const biases = new Map<string, Value>();
  const biasOf = (window: number | null, pastLen: Dim): Value => {
    const key = `${window}|${pastLen}`;
    let b = biases.get(key);
    if (!b) biases.set(key, b = attentionBias(g, dimsOf(pastLen), queryPos, P, window, mask));
    return b;
  };
  const attention = (i: number): LayerAttention => {
    const pastLen = past ? past[i].key.shape[2] : 0;
    return { bias: biasOf(windows[i], pastLen), dims: dimsOf(pastLen), past: past?.[i] };
  };

  const mb = new ModelBuilder(g, model, lora, options);
  const fam: FamilyInputs = { mb, inputIds: ids, positions, attention };
  const out = family.build(fam, c);
  mb.checkAllLoraUsed();
  return { present: out.present, hidden: out.hidden, head: out.head, builder: mb };
}

/** P, the length of the whole past: a full-attention layer's cache, else the mask minus the new tokens. */
function pastLength(inputs: ForwardInputs, windows: readonly (number | null)[], layers: number, seq: Dim): Dim {
  const past = inputs.past;
  if (!past) return 0;
  if (past.length !== layers) throw new GraphError(`buildForward: past has ${past.length} layers, the model ${layers}`);
  const full = windows.findIndex((w) => w === null);
  if (full >= 0) return past[full].key.shape[2];
  if (!inputs.attentionMask) {
    throw new GraphError(
      "buildForward: every layer of this model attends through a sliding window, so with past it needs an attentionMask (its length gives the past's)",
    );
  }
  return subDims(inputs.attentionMask.shape[1], seq);
}

/**
 * The additive bias `[B or 1, 1, rep · T, pastLen + T]` of one kind of layer: causal (key
 * position <= query position), inside the window (key position > query position - W) and not
 * padding. Keys are the last `pastLen + T` of the `P + T` columns.
 */
function attentionBias(
  g: Graph,
  d: AttentionDims,
  queryPos: Value,
  P: Dim,
  window: number | null,
  mask: Value | undefined,
): Value {
  const whole = sameDim(d.past, P);
  const keyPos = op.arange(g, whole ? 0 : subDims(P, d.past), d.total); // [S]
  const k = op.unsqueeze(keyPos, [0]), q = op.unsqueeze(queryPos, [1]); // [1, S], [T, 1]
  let bias = op.where(op.greater(k, q), g.scalar(NEG), g.scalar(0)); // [T, S]
  if (window !== null) {
    const old = op.where(op.greater(k, op.sub(q, g.scalar(window, "int64"))), g.scalar(0), g.scalar(NEG));
    bias = op.add(bias, old);
  }
  bias = op.unsqueeze(bias, [0, 1]); // [1, 1, T, S]
  if (mask) {
    // The layer's keys are the tail of [zeros(pastLen) | mask] (slots before the first token masked).
    const cols = whole
      ? mask
      : op.narrow(op.concat([op.expand(g.int64s([0]), [d.batch, d.past]), mask], 1), 1, P, d.total);
    const pad = op.mul(op.sub(op.cast(cols, "float32"), g.scalar(1)), g.scalar(-NEG)); // 0 or -1e9
    bias = op.add(bias, op.unsqueeze(pad, [1, 2])); // [B, 1, T, S]
  }
  const rep = d.heads / d.kvHeads;
  return rep > 1 ? op.concat(Array.from({ length: rep }, () => bias), 2) : bias;
}
