/**
 * What a model family is: the {@link ArchSpec} each family file under `families/` exports and
 * `MODEL_FAMILIES` (registry.ts) collects. Everything that differs between families lives in
 * its spec: how its `config.json` reads, which weights (by Hugging Face name and shape) a
 * checkpoint holds, which modules LoRA adapts and how they are stored, how positions are encoded,
 * which layers attend through a sliding window, and the graph of its decoder stack. The shared
 * code (loading, masks, LM heads, scoring, training, generation with its KV cache) asks the spec
 * and never names a family.
 *
 * @module
 */

import type { Value } from "../onnx/graph.ts";
import type { ConfigReader, ModelConfig } from "./config_base.ts";
import type { LayerAttention, LinearModule, ModelBuilder } from "./layers.ts";

export type { LinearModule } from "./layers.ts";

/** What a family's graph builder gets from `buildHidden`. */
export interface FamilyInputs {
  /** Weights, LoRA branches and graph of this pass. */
  mb: ModelBuilder;
  /** int64 `[B, T]`. */
  inputIds: Value;
  /** int64 `[B or 1, T]`: each token's position in its sequence. */
  positions: Value;
  /**
   * Layer i's attention inputs: the additive bias (causal, padding and, for a windowed layer,
   * the sliding window), its dims and its part of the KV cache.
   */
  attention(layer: number): LayerAttention;
}

/** What a family's graph builder returns. */
export interface FamilyOutputs {
  /** The final hidden states `[B, T, hidden]`, after the last norm. */
  hidden: Value;
  /** The LM head's weight name, stored `[vocab, hidden]` (the embedding when tied). */
  head: string;
  /** Per layer, keys (after RoPE) and values including the past, `[B, kvHeads, past + T, headDim]`. */
  present: { key: Value; value: Value }[];
}

/**
 * One model family. `C` is the family's config type: a {@link ModelConfig} with the fields only
 * this family reads.
 */
export interface ArchSpec<C extends ModelConfig> {
  /** Display name, e.g. `"Gemma 3 (text)"`. */
  readonly name: string;
  /** The transformers class of its checkpoints, e.g. `"Gemma3ForCausalLM"`. */
  readonly hfClass: string;
  /**
   * Reads the family's `config.json` fields. Problems go to `r.problem()` (all of them are then
   * reported at once, naming the file); the returned config is only used when there are none.
   */
  parseConfig(r: ConfigReader): C;
  /** Every weight a checkpoint of this config holds, by Hugging Face name, with its shape (`lm_head.weight` included, tied or not). */
  weights(c: C): Map<string, number[]>;
  /** The token embedding's weight name (what a tied `lm_head.weight` is). */
  readonly embedding: string;
  /**
   * Renames a checkpoint's tensors before they are checked (e.g. GPT-2's original upload without
   * the `transformer.` prefix), given every name in it; null: names stay.
   */
  renameWeights?(names: ReadonlySet<string>): ((name: string) => string) | null;
  /** Saved tensors that are buffers, not weights (dropped on load), e.g. `rotary_emb.inv_freq`. */
  readonly buffers?: RegExp;
  /** Every module LoRA may adapt, in layer order. */
  loraModules(c: C): LinearModule[];
  /** PEFT's usual `target_modules` for the family: every attention and MLP projection. */
  readonly defaultTargets: readonly string[];
  /**
   * `"learned"`: a position table of `maxPositions` rows, so longer sequences cannot run;
   * `"rotary"`: RoPE, any length (quality beyond `maxPositions` is the model's business).
   */
  readonly positions: "learned" | "rotary";
  /** Per layer, the sliding attention window (keys `q - window < k <= q`), or null for full attention. */
  attentionWindows(c: C): readonly (number | null)[];
  /** The decoder stack: embeddings, layers, final norm; the LM head is the shared code's. */
  build(f: FamilyInputs, c: C): FamilyOutputs;
}
