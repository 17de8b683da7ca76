/**
 * The LoRA settings of one adapter and its scaling: what graphs need, with no dependency on the
 * model families (so the graph builders can use it while the families' registry uses them).
 *
 * @module
 */

/** LoRA settings of one adapter (PEFT's `LoraConfig`, the subset we implement). */
export interface LoraConfig {
  r: number;
  alpha: number;
  /** Module names or dotted suffixes, matched like PEFT: `name == t` or `name.endsWith("." + t)`. */
  targetModules: string[];
  useRslora: boolean;
  /** PEFT's flag for Conv1D-style `[in, out]` base weights (GPT-2); the module type decides in the end. */
  fanInFanOut: boolean;
  dropout: number;
  bias: "none";
  baseModelNameOrPath: string | null;
  taskType: "CAUSAL_LM";
}

/** The factor on B·A: alpha / r, or alpha / sqrt(r) with rsLoRA. */
export function loraScaling(c: LoraConfig): number {
  return c.useRslora ? c.alpha / Math.sqrt(c.r) : c.alpha / c.r;
}
