/**
 * Qwen2 / Qwen2.5 (`Qwen2ForCausalLM`): Llama's graph (see llama.ts) with biases on q, k and v and
 * none elsewhere, Qwen2's config defaults, and no sliding window (`use_sliding_window: true` is
 * refused: every layer attends to the full context here).
 *
 * @module
 */

import type { ConfigReader } from "../config_base.ts";
import type { ArchSpec } from "../arch.ts";
import { decoderConfig } from "./_decoder.ts";
import { type LlamaConfig, llamaStyleSpec } from "./llama.ts";

/** Qwen2's config.json. */
function parseQwen2Config(r: ConfigReader): LlamaConfig {
  r.refuse("use_sliding_window", false, "every layer attends to the full context");
  const base = decoderConfig(r, "qwen2", {
    maxPositions: 32768,
    eps: 1e-6,
    tie: false,
    activationKey: "hidden_act",
    activation: "silu",
  });
  return { ...base, qkvBias: true, oBias: false, mlpBias: false, rope: r.rope() };
}

/** The Qwen2 family. */
export const QWEN2: ArchSpec<LlamaConfig> = llamaStyleSpec("Qwen2", "Qwen2ForCausalLM", parseQwen2Config);
