/**
 * The forward graph of a causal LM, whatever its family: token ids (plus optional attention mask,
 * positions and KV cache) in, logits and the new KV cache out.
 *
 * Batch and sequence sizes stay symbolic (the names of `inputIds`' dims, e.g. `"batch"`, `"seq"`,
 * and the past length `"past"`), so one ONNX session serves every shape. The causal and padding
 * masks are built in the graph as one additive bias of `0` / `-1e9`: a finite value, so a query row
 * whose keys are all padding gets a uniform softmax instead of NaN.
 *
 * @module
 */

import type { Dim, Graph, Value } from "../onnx/graph.ts";
import { GraphError } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import type { LoraConfig } from "../lora/config.ts";
import type { LoadedModel } from "./load.ts";
import { type AttentionDims, type BuildOptions, concatTo, flatten, groupedRows, ModelBuilder } from "./layers.ts";
import { buildGpt2 } from "./gpt2.ts";
import { buildLlama } from "./llama.ts";

/** Inputs of {@link buildForward}. */
export interface ForwardInputs {
  /** int64 `[B, T]`. */
  inputIds: Value;
  /** int64 `[B, P + T]`: 1 = real token, 0 = padding. Without it every key is attended (causally). */
  attentionMask?: Value;
  /** int64 `[B, T]`; default `P + [0, T)` (right padding needs nothing else; left padding passes its own). */
  positionIds?: Value;
  /** Per layer, `[B, kvHeads, P, headDim]` keys (after RoPE) and values of the earlier tokens. */
  past?: { key: Value; value: Value }[];
  /** `"last"`: logits of the last position only (`[B, 1, V]`, for decoding); default `"all"`. */
  logitsPositions?: "all" | "last";
}

/** LoRA parameters to apply: PEFT key → value (`lora_A` `[r, in]`, `lora_B` `[out, r]`). */
export interface LoraAttachment {
  config: LoraConfig;
  params: Map<string, Value>;
}

/** Outputs of {@link buildHidden}. */
export interface HiddenOutputs {
  /** Per layer, keys and values including the past, `[B, kvHeads, P + T, headDim]`. */
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

/** What a family's graph builder gets. */
export interface FamilyInputs {
  mb: ModelBuilder;
  inputIds: Value;
  positions: Value;
  bias: Value;
  dims: AttentionDims;
  past?: { key: Value; value: Value }[];
}

/** What a family's graph builder returns. */
export interface FamilyOutputs {
  hidden: Value;
  /** The LM head's weight name (stored `[vocab, hidden]`). */
  head: string;
  present: { key: Value; value: Value }[];
}

/** A bias of 0 where `cond` holds and -1e9 elsewhere. */
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
  let last = out.hidden;
  if (inputs.logitsPositions === "last") {
    const h = out.hidden;
    last = g.addNode("Slice", [h, g.int64s([-1]), g.int64s([Number.MAX_SAFE_INTEGER]), g.int64s([1])], [{
      dtype: h.dtype,
      shape: [h.shape[0], 1, h.shape[2]],
    }])[0];
  }
  const { flat, restore } = flatten(last);
  const w = out.builder.weight32(out.head, flat);
  return { ...out, logits: restore(op.gemm(flat, w, null, { transB: true }), model.config.vocabSize) };
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
  const ids = inputs.inputIds;
  if (ids.graph !== g) throw new GraphError("buildForward: inputIds belongs to another graph");
  if (ids.dtype !== "int64" || ids.shape.length !== 2) {
    throw new GraphError(`buildForward: inputIds must be int64 [B, T], got ${ids.dtype} [${ids.shape}]`);
  }
  const [batch, seq] = ids.shape;
  const past = inputs.past;
  if (past && past.length !== c.numLayers) {
    throw new GraphError(`buildForward: past has ${past.length} layers, the model ${c.numLayers}`);
  }
  const pastDim: Dim = past ? past[0].key.shape[2] : 0;
  const total: Dim = !past
    ? seq
    : typeof pastDim === "number" && typeof seq === "number"
    ? pastDim + seq
    : `${pastDim}+${seq}`;
  const dims: AttentionDims = {
    batch,
    seq,
    past: pastDim,
    total,
    heads: c.numHeads,
    kvHeads: c.numKvHeads,
    headDim: c.headDim,
  };
  if (past) {
    for (const [i, p] of past.entries()) {
      for (const v of [p.key, p.value]) {
        const ok = v.shape.length === 4 && v.shape[1] === c.numKvHeads && v.shape[3] === c.headDim &&
          v.shape[2] === pastDim && v.dtype === "float32";
        if (!ok) {
          throw new GraphError(
            `buildForward: past[${i}] must be float32 [B, ${c.numKvHeads}, ${pastDim}, ${c.headDim}], got ${v.dtype} [${v.shape}]`,
          );
        }
      }
    }
  }

  // Positions of the new tokens in the whole sequence: past + [0, T).
  const tLen = op.shapeOf(ids, 1, 2);
  const pLen = past ? op.shapeOf(past[0].key, 2, 3) : g.int64s([0]);
  const sLen = op.add(pLen, tLen);
  const scalar = (v: Value) => op.squeeze(v, [0]);
  const range = (start: Value, limit: Value, len: Dim) =>
    g.addNode("Range", [scalar(start), scalar(limit), g.scalar(1, "int64")], [{ dtype: "int64", shape: [len] }])[0];
  const queryPos = range(pLen, sLen, seq); // [T]
  const keyPos = range(g.int64s([0]), sLen, total); // [S]
  let positions = inputs.positionIds ?? op.unsqueeze(queryPos, [0]);
  if (inputs.positionIds) {
    const p = inputs.positionIds;
    if (p.dtype !== "int64" || p.shape.length !== 2) {
      throw new GraphError(`buildForward: positionIds must be int64 [B, T], got ${p.dtype} [${p.shape}]`);
    }
    positions = g.addNode("Identity", [p], [{ dtype: "int64", shape: [p.shape[0] === 1 ? 1 : batch, seq] }])[0];
  }

  // Additive bias [B or 1, 1, rep·T, S]: causal (key position <= query position) plus padding.
  const future = op.greater(op.unsqueeze(keyPos, [0]), op.unsqueeze(queryPos, [1])); // [T, S]
  let bias = op.where(future, g.scalar(NEG), g.scalar(0)); // [T, S]
  bias = op.unsqueeze(bias, [0, 1]); // [1, 1, T, S]
  if (inputs.attentionMask) {
    const m = inputs.attentionMask;
    if (m.dtype !== "int64" || m.shape.length !== 2) {
      throw new GraphError(`buildForward: attentionMask must be int64 [B, P + T], got ${m.dtype} [${m.shape}]`);
    }
    const mask = g.addNode("Identity", [m], [{ dtype: "int64", shape: [batch, total] }])[0];
    const pad = op.mul(op.sub(op.cast(mask, "float32"), g.scalar(1)), g.scalar(-NEG)); // 0 or -1e9
    bias = op.add(bias, op.unsqueeze(pad, [1, 2])); // [B, 1, T, S]
  }
  const rep = c.numHeads / c.numKvHeads;
  if (rep > 1) {
    const b0 = bias.shape[0];
    bias = concatTo(Array.from({ length: rep }, () => bias), 2, [b0, 1, groupedRows(dims), total]);
  }

  const mb = new ModelBuilder(g, model, lora, options);
  const fam: FamilyInputs = { mb, inputIds: ids, positions, bias, dims, past };
  const out = c.arch === "gpt2" ? buildGpt2(fam) : buildLlama(fam);
  mb.checkAllLoraUsed();
  return { present: out.present, hidden: out.hidden, head: out.head, builder: mb };
}
