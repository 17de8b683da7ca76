/**
 * Hugging Face `config.json` → a {@link ModelConfig}: the public entry. Each family reads its own
 * fields (`parseConfig` of its spec in `families/`, dispatched on `model_type` by the registry);
 * anything that would change the model's math and that we do not implement fails, listing every
 * such field at once, rather than giving silently wrong logits.
 *
 * @module
 */

export { type Activation, ConfigError, type ModelConfig, type RopeScaling, type RopeSpec } from "./config_base.ts";
export { type Arch, parseModelConfig } from "./registry.ts";
