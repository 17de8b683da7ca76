/**
 * Which base-model modules get LoRA matrices, with PEFT's names and shapes.
 *
 * PEFT matches each `target_modules` entry against every module's full dotted name as a suffix
 * (`name == t` or `name.endsWith("." + t)`), so GPT-2's `c_proj` selects both `attn.c_proj` and
 * `mlp.c_proj`. The saved keys are `base_model.model.<module>.lora_A.weight` ([r, in]) and
 * `.lora_B.weight` ([out, r]) whatever the base layer's layout.
 *
 * @module
 */

import type { ModelConfig } from "../models/config.ts";
import { AdapterError, type LoraConfig } from "./config.ts";

/** One adapted module. */
export interface LoraTarget {
  /** Full module name, e.g. `transformer.h.0.attn.c_attn`. */
  module: string;
  /** PEFT key of A, e.g. `base_model.model.transformer.h.0.attn.c_attn.lora_A.weight`. */
  keyA: string;
  keyB: string;
  inFeatures: number;
  outFeatures: number;
  /** The base weight in `model.safetensors`, e.g. `transformer.h.0.attn.c_attn.weight`. */
  baseWeight: string;
  /** True for GPT-2 Conv1D, whose base weight is stored [in, out]; Linear stores [out, in]. */
  fanInFanOut: boolean;
}

interface Module {
  module: string;
  inFeatures: number;
  outFeatures: number;
  fanInFanOut: boolean;
}

/** Every module LoRA may adapt in a model, in layer order. */
export function adaptableModules(config: ModelConfig): Module[] {
  const out: Module[] = [];
  const h = config.hiddenSize, inter = config.intermediateSize;
  for (let i = 0; i < config.numLayers; i++) {
    if (config.arch === "gpt2") {
      const p = `transformer.h.${i}`;
      out.push(
        { module: `${p}.attn.c_attn`, inFeatures: h, outFeatures: 3 * h, fanInFanOut: true },
        { module: `${p}.attn.c_proj`, inFeatures: h, outFeatures: h, fanInFanOut: true },
        { module: `${p}.mlp.c_fc`, inFeatures: h, outFeatures: inter, fanInFanOut: true },
        { module: `${p}.mlp.c_proj`, inFeatures: inter, outFeatures: h, fanInFanOut: true },
      );
    } else {
      const p = `model.layers.${i}`;
      const q = config.numHeads * config.headDim, kv = config.numKvHeads * config.headDim;
      out.push(
        { module: `${p}.self_attn.q_proj`, inFeatures: h, outFeatures: q, fanInFanOut: false },
        { module: `${p}.self_attn.k_proj`, inFeatures: h, outFeatures: kv, fanInFanOut: false },
        { module: `${p}.self_attn.v_proj`, inFeatures: h, outFeatures: kv, fanInFanOut: false },
        { module: `${p}.self_attn.o_proj`, inFeatures: q, outFeatures: h, fanInFanOut: false },
        { module: `${p}.mlp.gate_proj`, inFeatures: h, outFeatures: inter, fanInFanOut: false },
        { module: `${p}.mlp.up_proj`, inFeatures: h, outFeatures: inter, fanInFanOut: false },
        { module: `${p}.mlp.down_proj`, inFeatures: inter, outFeatures: h, fanInFanOut: false },
      );
    }
  }
  return out;
}

/** PEFT's rule: the entry is the whole name or a dotted suffix of it. */
function matches(module: string, target: string): boolean {
  return module === target || module.endsWith(`.${target}`);
}

/**
 * The LoRA targets of a model under a config, in layer order.
 *
 * @throws {AdapterError} when a `target_modules` entry matches no module, listing the valid names
 */
export function loraTargets(config: ModelConfig, lora: LoraConfig): LoraTarget[] {
  const modules = adaptableModules(config);
  for (const t of lora.targetModules) {
    if (!modules.some((m) => matches(m.module, t))) {
      const names = [...new Set(modules.map((m) => m.module.split(".").at(-1)!))];
      throw new AdapterError(
        `target module ${JSON.stringify(t)} matches no module of this ${config.arch} model (valid names: ${
          names.join(", ")
        })`,
      );
    }
  }
  return modules.filter((m) => lora.targetModules.some((t) => matches(m.module, t))).map((m) => ({
    module: m.module,
    keyA: `base_model.model.${m.module}.lora_A.weight`,
    keyB: `base_model.model.${m.module}.lora_B.weight`,
    inFeatures: m.inFeatures,
    outFeatures: m.outFeatures,
    baseWeight: `${m.module}.weight`,
    fanInFanOut: m.fanInFanOut,
  }));
}
