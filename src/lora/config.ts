/**
 * LoRA hyper-parameters and PEFT's `adapter_config.json`, both ways, so an adapter trained here
 * loads with `PeftModel.from_pretrained` and a PEFT adapter loads here.
 *
 * @module
 */

import type { ModelConfig } from "../models/config_base.ts";
import { familyOf } from "../models/registry.ts";
import type { LoraConfig } from "./types.ts";

export { type LoraConfig, loraScaling } from "./types.ts";

/** The error of an unsupported or malformed adapter (config, tensors or directory). */
export class AdapterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AdapterError";
  }
}

/** Options of {@link createLoraConfig}; everything but `r` has a default. */
export interface LoraOptions {
  r: number;
  /** Default: 2 × r. */
  alpha?: number;
  /** Default: the family's `defaultTargets` (every attention and MLP projection). */
  targetModules?: string[];
  useRslora?: boolean;
  dropout?: number;
  baseModelNameOrPath?: string | null;
}

/**
 * A new adapter's config for a model; `fanInFanOut` is set, as PEFT does, when the family stores
 * its projections `[in, out]` (GPT-2's Conv1D).
 */
export function createLoraConfig(model: ModelConfig, options: LoraOptions): LoraConfig {
  const family = familyOf(model);
  const c: LoraConfig = {
    r: options.r,
    alpha: options.alpha ?? 2 * options.r,
    targetModules: [...(options.targetModules ?? family.defaultTargets)],
    useRslora: options.useRslora ?? false,
    fanInFanOut: family.loraModules(model).some((m) => m.layout === "in_out"),
    dropout: options.dropout ?? 0,
    bias: "none",
    baseModelNameOrPath: options.baseModelNameOrPath ?? null,
    taskType: "CAUSAL_LM",
  };
  checkNumbers(c, "LoRA options");
  return c;
}

function checkNumbers(c: LoraConfig, source: string): void {
  if (!Number.isSafeInteger(c.r) || c.r <= 0) {
    throw new AdapterError(`${source}: r must be a positive integer, got ${c.r}`);
  }
  if (typeof c.alpha !== "number" || !(c.alpha > 0)) {
    throw new AdapterError(`${source}: lora_alpha must be a positive number, got ${c.alpha}`);
  }
  if (typeof c.dropout !== "number" || !(c.dropout >= 0 && c.dropout < 1)) {
    throw new AdapterError(`${source}: lora_dropout must be in [0, 1), got ${c.dropout}`);
  }
  if (c.targetModules.length === 0) {
    throw new AdapterError(`${source}: target_modules is empty; name at least one module`);
  }
}

/** Keys whose non-empty values change what the adapter computes and that we do not implement. */
const UNSUPPORTED_WHEN_SET = [
  "layers_to_transform",
  "layers_pattern",
  "modules_to_save",
  "exclude_modules",
  "target_parameters",
  "layer_replication",
  "trainable_token_indices",
  "alora_invocation_tokens",
] as const;

/** Flags that must be false. */
const UNSUPPORTED_WHEN_TRUE = ["use_dora", "lora_bias", "use_qalora"] as const;

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (Array.isArray(v) && v.length === 0) ||
    (typeof v === "object" && !Array.isArray(v) && Object.keys(v as object).length === 0);
}

/**
 * Parses PEFT's `adapter_config.json` (already JSON-parsed).
 *
 * @throws {AdapterError} naming the file and every unsupported field (DoRA, per-layer rank or alpha
 *   patterns, bias training, extra saved modules, ...) with what is supported
 */
export function parseAdapterConfig(json: unknown, source: string): LoraConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new AdapterError(`${source}: must be a JSON object`);
  }
  const j = json as Record<string, unknown>;
  const problems: string[] = [];
  if (j.peft_type !== "LORA") problems.push(`peft_type ${JSON.stringify(j.peft_type ?? null)} (supported: "LORA")`);
  const bias = j.bias ?? "none";
  if (bias !== "none") problems.push(`bias ${JSON.stringify(bias)} (supported: "none")`);
  const task = j.task_type ?? "CAUSAL_LM";
  if (task !== "CAUSAL_LM") problems.push(`task_type ${JSON.stringify(task)} (supported: "CAUSAL_LM")`);
  for (const k of UNSUPPORTED_WHEN_TRUE) {
    if (j[k] === true) problems.push(`${k}: true (supported: false)`);
  }
  for (const k of ["rank_pattern", "alpha_pattern"]) {
    if (!isEmpty(j[k])) problems.push(`${k} ${JSON.stringify(j[k])} (supported: {}; one r and alpha for every module)`);
  }
  for (const k of UNSUPPORTED_WHEN_SET) {
    if (!isEmpty(j[k])) problems.push(`${k} ${JSON.stringify(j[k])} (supported: null)`);
  }
  const targets = j.target_modules;
  let targetModules: string[] = [];
  if (typeof targets === "string") {
    problems.push(
      `target_modules is a regular expression (${JSON.stringify(targets)}) (supported: a list of module names)`,
    );
  } else if (!Array.isArray(targets) || !targets.every((t) => typeof t === "string")) {
    problems.push(`target_modules ${JSON.stringify(targets ?? null)} must be a list of module names`);
  } else {
    targetModules = [...targets];
  }
  if (problems.length > 0) {
    throw new AdapterError(`${source}: unsupported adapter config:\n  - ${problems.join("\n  - ")}`);
  }
  const base = j.base_model_name_or_path;
  const c: LoraConfig = {
    r: j.r as number,
    alpha: (j.lora_alpha ?? 8) as number,
    targetModules,
    useRslora: j.use_rslora === true,
    fanInFanOut: j.fan_in_fan_out === true,
    dropout: (j.lora_dropout ?? 0) as number,
    bias: "none",
    baseModelNameOrPath: typeof base === "string" ? base : null,
    taskType: "CAUSAL_LM",
  };
  checkNumbers(c, source);
  return c;
}

/**
 * The `adapter_config.json` object PEFT's `save_pretrained` writes for this config, keys sorted like
 * PEFT's. Only keys that PEFT has known since 0.10 are written: newer PEFT fills the rest with
 * defaults, while older PEFT rejects keys it does not know.
 */
export function adapterConfigJson(c: LoraConfig): Record<string, unknown> {
  const obj: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: c.baseModelNameOrPath,
    bias: c.bias,
    fan_in_fan_out: c.fanInFanOut,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: c.alpha,
    lora_dropout: c.dropout,
    megatron_config: null,
    megatron_core: "megatron.core",
    modules_to_save: null,
    peft_type: "LORA",
    r: c.r,
    rank_pattern: {},
    revision: null,
    target_modules: [...c.targetModules],
    task_type: c.taskType,
    use_dora: false,
    use_rslora: c.useRslora,
  };
  return Object.fromEntries(Object.entries(obj).sort(([a], [b]) => (a < b ? -1 : 1)));
}
