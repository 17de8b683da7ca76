/**
 * The two graphs of cached decoding, each compiled once with symbolic sizes so one session serves
 * every batch, prompt and cache length:
 *
 * - prefill: `input_ids`, `attention_mask`, `position_ids` `[prompts, seq]` and `row_source`
 *   `[rows]` (which prompt each output row copies: K samples of a prompt share one prefill) →
 *   `logits` `[rows, V]` of the last position, `next_token` `[rows]` (its argmax) and
 *   `present_key_i` / `present_value_i` `[rows, kvHeads, seq, headDim]`;
 * - decode: `input_ids` `[rows, 1]`, `attention_mask` `[rows, past + 1]`, `position_ids`
 *   `[rows, 1]`, `past_key_i` / `past_value_i` `[rows, kvHeads, past, headDim]` → the same outputs
 *   with the cache one longer.
 *
 * Only the last position reaches the LM head (the hidden state is picked before the vocabulary
 * projection), so a prompt of T tokens costs one `[H, V]` product, not T. With LoRA "slots" the
 * adapter matrices are graph inputs (`lora_A` `[r, in]`, `lora_B` `[out, r]` with a symbolic r, at
 * scaling 1: callers feed `s · B`), so adapters switch, or turn off with zeros, without a rebuild.
 *
 * @module
 */

import { Graph, type Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import type { LoraConfig } from "../lora/config.ts";
import { loraTargets } from "../lora/targets.ts";
import type { LoadedModel } from "../models/load.ts";
import { buildHidden, type LoraAttachment } from "../models/forward.ts";
import type { HalfDtypes } from "../models/half_dtypes.ts";

/** Which of the two graphs. */
export type GraphKind = "prefill" | "decode";

/** The names of the cache inputs and outputs of layer i. */
export function cacheNames(
  i: number,
): { pastKey: string; pastValue: string; presentKey: string; presentValue: string } {
  return {
    pastKey: `past_key_${i}`,
    pastValue: `past_value_${i}`,
    presentKey: `present_key_${i}`,
    presentValue: `present_value_${i}`,
  };
}

/** The LoRA inputs of a slot graph: PEFT key → shape (with `"lora_r"` for the rank). */
export function loraSlotInputs(model: LoadedModel, targets: LoraConfig): Map<string, (number | string)[]> {
  const out = new Map<string, (number | string)[]>();
  for (const t of loraTargets(model.config, targets)) {
    out.set(t.keyA, ["lora_r", t.inFeatures]);
    out.set(t.keyB, [t.outFeatures, "lora_r"]);
  }
  return out;
}

/**
 * Builds the prefill or decode graph. `loraTargets`, when given, adds LoRA slot inputs for the
 * modules its `targetModules` select (its alpha and r are ignored: the slots run at scaling 1).
 */
export function buildGenerationGraph(
  model: LoadedModel,
  kind: GraphKind,
  loraSlots?: LoraConfig,
  halfDtypes?: HalfDtypes,
): Graph {
  const c = model.config;
  const g = new Graph(kind);
  const seq = kind === "prefill" ? "seq" : 1;
  const batch = kind === "prefill" ? "prompts" : "rows";
  const ids = g.input("input_ids", "int64", [batch, seq]);
  const mask = g.input("attention_mask", "int64", [batch, kind === "prefill" ? "seq" : "past+1"]);
  const positions = g.input("position_ids", "int64", [batch, seq]);
  const rowSource = kind === "prefill" ? g.input("row_source", "int64", ["rows"]) : null;
  let past: { key: Value; value: Value }[] | undefined;
  if (kind === "decode") {
    past = [];
    for (let i = 0; i < c.numLayers; i++) {
      const n = cacheNames(i);
      const shape = [batch, c.numKvHeads, "past", c.headDim];
      past.push({ key: g.input(n.pastKey, "float32", shape), value: g.input(n.pastValue, "float32", shape) });
    }
  }
  let lora: LoraAttachment | undefined;
  if (loraSlots) {
    const params = new Map<string, Value>();
    for (const [key, shape] of loraSlotInputs(model, loraSlots)) params.set(key, g.input(key, "float32", shape));
    lora = { config: { ...loraSlots, alpha: loraSlots.r, useRslora: false }, params };
  }
  // Weights as plain constants: ORT may prepack them for the small-batch MatMuls of decoding.
  const out = buildHidden(g, model, { inputIds: ids, attentionMask: mask, positionIds: positions, past }, lora, {
    weights: "constant",
    halfDtypes,
  });

  // Only the last position's logits: its hidden row times the head ([V, H] as stored, transB).
  const last = op.gather(out.hidden, g.scalar(-1, "int64"), 1); // [B, H]
  let logits = op.gemm(last, out.builder.weight32(out.head, null), null, { transB: true });
  const presents = out.present;
  if (rowSource) {
    logits = op.gather(logits, rowSource, 0);
    for (const p of presents) {
      p.key = op.gather(p.key, rowSource, 0);
      p.value = op.gather(p.value, rowSource, 0);
    }
  }
  g.output(logits, "logits");
  g.output(op.argMax(logits, -1, false), "next_token");
  presents.forEach((p, i) => {
    const n = cacheNames(i);
    g.output(p.key, n.presentKey);
    g.output(p.value, n.presentValue);
  });
  pruneGraph(g);
  return g;
}

/** Drops the nodes and initializers that no graph output depends on (e.g. the full-sequence LM head). */
export function pruneGraph(g: Graph): void {
  const needed = new Set(g.outputs.map((o) => o.name));
  const keep: boolean[] = new Array(g.nodes.length).fill(false);
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep[i] = true;
    for (const input of n.inputs) if (input) needed.add(input);
  }
  const nodes = g.nodes.filter((_, i) => keep[i]);
  g.nodes.length = 0;
  g.nodes.push(...nodes);
  for (const name of [...g.initializers.keys()]) if (!needed.has(name)) g.initializers.delete(name);
}
