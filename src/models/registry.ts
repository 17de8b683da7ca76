/**
 * Every model family we run, in one explicit table keyed by `config.json`'s `model_type`. Its type
 * maps every {@link Arch} to an {@link ArchSpec} of that family's config, so a family listed
 * without a spec (or a spec of the wrong config type) does not compile. No registration by import
 * side effects: adding a family is one file under `families/` and one line in each table below
 * (see README, "How to add a model family").
 *
 * @module
 */

import type { ArchSpec } from "./arch.ts";
import { ConfigError, ConfigReader, type Json, type ModelConfig } from "./config_base.ts";
import { GEMMA3, type Gemma3Config } from "./families/gemma3.ts";
import { GPT2, type Gpt2Config } from "./families/gpt2.ts";
import { LLAMA, type LlamaConfig } from "./families/llama.ts";
import { QWEN2 } from "./families/qwen2.ts";
import { QWEN3, type Qwen3Config } from "./families/qwen3.ts";

/** Each family's config type, by `model_type`. */
export interface FamilyConfigs {
  gpt2: Gpt2Config;
  llama: LlamaConfig;
  qwen2: LlamaConfig;
  qwen3: Qwen3Config;
  gemma3_text: Gemma3Config;
}

/** A `model_type` we run. */
export type Arch = keyof FamilyConfigs;

/** `model_type` → the family's spec. */
export const MODEL_FAMILIES: { readonly [A in Arch]: ArchSpec<FamilyConfigs[A]> } = {
  gpt2: GPT2,
  llama: LLAMA,
  qwen2: QWEN2,
  qwen3: QWEN3,
  gemma3_text: GEMMA3,
};

/** True when `type` is a registered `model_type`. */
export function isArch(type: unknown): type is Arch {
  return typeof type === "string" && Object.hasOwn(MODEL_FAMILIES, type);
}

function registered(): string {
  return Object.entries(MODEL_FAMILIES).map(([k, s]) => `${k} (${s.name})`).join(", ");
}

/**
 * The spec of a config's family, typed for configs of any family (the registry pairs each config
 * with the spec that parsed it).
 *
 * @throws {ConfigError} for a config of no registered family
 */
export function familyOf(config: ModelConfig): ArchSpec<ModelConfig> {
  if (!isArch(config.arch)) {
    throw new ConfigError(
      `model family ${JSON.stringify(config.arch)} is not registered (registered: ${registered()})`,
    );
  }
  return MODEL_FAMILIES[config.arch] as unknown as ArchSpec<ModelConfig>;
}

/**
 * The longest sequence a model can run: `maxPositions` for learned position tables (GPT-2),
 * unbounded with rotary positions.
 */
export function maxSequenceLength(config: ModelConfig): number {
  return familyOf(config).positions === "learned" ? config.maxPositions : Infinity;
}

/**
 * Parses a Hugging Face `config.json` (already JSON-parsed) with its family's reader.
 *
 * @param json the parsed config
 * @param source the file name for messages
 * @throws {ConfigError} naming the file: an unknown `model_type` (listing the registered families
 *   and how to add one), or every unsupported or invalid field at once
 */
export function parseModelConfig(json: unknown, source: string): ModelConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ConfigError(`${source}: must be a JSON object`);
  }
  const type = (json as Json).model_type;
  if (!isArch(type)) {
    throw new ConfigError(
      `${source}: model_type ${JSON.stringify(type ?? null)} is not supported (supported: ${registered()}). ` +
        `To add a family, write src/models/families/<family>.ts exporting an ArchSpec and list it in ` +
        `MODEL_FAMILIES (src/models/registry.ts); README.md, "How to add a model family", walks through one`,
    );
  }
  const r = new ConfigReader(json as Json, source);
  const config = (MODEL_FAMILIES[type] as unknown as ArchSpec<ModelConfig>).parseConfig(r);
  if (r.problems.length > 0) {
    throw new ConfigError(`${source}: unsupported ${type} config:\n  - ${r.problems.join("\n  - ")}`);
  }
  return config;
}
