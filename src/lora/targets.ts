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

import type { ModelConfig } from "../models/config_base.ts";
import { familyOf } from "../models/registry.ts";
import type { LinearModule } from "../models/layers.ts";
import { AdapterError } from "./config.ts";
import type { LoraConfig } from "./types.ts";

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

/** Every module LoRA may adapt in a model, in layer order (the family's `loraModules`). */
export function adaptableModules(config: ModelConfig): LinearModule[] {
  return familyOf(config).loraModules(config);
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
    if (!modules.some((m) => matches(m.name, t))) {
      const names = [...new Set(modules.map((m) => m.name.split(".").at(-1)!))];
      throw new AdapterError(
        `target module ${JSON.stringify(t)} matches no module of this ${config.arch} model (valid names: ${
          names.join(", ")
        })`,
      );
    }
  }
  return modules.filter((m) => lora.targetModules.some((t) => matches(m.name, t))).map((m) => ({
    module: m.name,
    keyA: `base_model.model.${m.name}.lora_A.weight`,
    keyB: `base_model.model.${m.name}.lora_B.weight`,
    inFeatures: m.inFeatures,
    outFeatures: m.outFeatures,
    baseWeight: `${m.name}.weight`,
    fanInFanOut: m.layout === "in_out",
  }));
}
