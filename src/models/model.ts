/**
 * A loaded model as the graph builders see it ({@link LoadedModel}), the LoRA parameters a graph
 * applies ({@link LoraAttachment}), and the release of a model's JS weights.
 *
 * @module
 */

import type { TensorData, Value } from "../onnx/graph.ts";
import type { LoraConfig } from "../lora/types.ts";
import type { ModelConfig } from "./config_base.ts";
import type { Tokenizer } from "./tokenizer.ts";

/** Generation defaults of the checkpoint (`generation_config.json`, else `config.json`). */
export interface GenerationDefaults {
  /** Every id that ends a sequence (Llama 3 lists several). */
  eosTokenIds: number[];
  bosTokenId: number | null;
  padTokenId: number | null;
  doSample?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  maxNewTokens?: number;
  repetitionPenalty?: number;
}

/** A model ready to be turned into graphs. */
export interface LoadedModel {
  dir: string;
  /** The family (config.json's `model_type`, a key of `MODEL_FAMILIES`). */
  arch: string;
  config: ModelConfig;
  /**
   * Weights by Hugging Face name, `lm_head.weight` included (tied or not): float32, or float16 /
   * bfloat16 as stored in the checkpoint (raw 16-bit patterns; `tensorToFloat32` converts).
   */
  weights: Map<string, TensorData>;
  tokenizer: Tokenizer;
  generation: GenerationDefaults;
  /** Set when the model was named by a Hub id: the repo, the revision asked for and its commit. */
  hub?: { repo: string; revision: string; commit: string };
}

/** LoRA parameters to apply: PEFT key → value (`lora_A` `[r, in]`, `lora_B` `[out, r]`). */
export interface LoraAttachment {
  config: LoraConfig;
  params: Map<string, Value>;
}

/** Weight maps whose JS copy was released (see {@link releaseWeights}). */
const RELEASED = new WeakSet<Map<string, TensorData>>();

/**
 * Drops the JS copy of a model's weights (the file bytes), for a caller that owns the model and
 * has created every session it needs: ORT holds its own copy, so keeping this one would hold the
 * weights twice. Graphs can no longer be built from the model afterwards.
 */
export function releaseWeights(model: LoadedModel): void {
  model.weights.clear();
  RELEASED.add(model.weights);
}

/** True when {@link releaseWeights} emptied this weight map. */
export function weightsReleased(weights: Map<string, TensorData>): boolean {
  return RELEASED.has(weights);
}
