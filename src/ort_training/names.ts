/**
 * The names ORT's training API keys on, and the mapping between PEFT's saved adapter keys and the
 * parameter names found in training artifacts.
 *
 * ORT classifies training-graph inputs by name (`training_api/module.cc`): checkpoint tensor names
 * are parameters, `lazy_reset_grad` is the reset flag, names ending in `_grad.accumulation.buffer`
 * or `_grad` are gradient buffers, everything else is a user input. Graph outputs ending in those
 * suffixes (or `_grad.accumulation.out`) are hidden; the rest are returned by `runTrainStep`.
 *
 * @module
 */

/** The BOOL[1] input that makes every accumulator overwrite instead of add (lazy reset). */
export const LAZY_RESET = "lazy_reset_grad";

/** `<p>_grad`: the gradient value an accumulator adds. */
export const gradName = (p: string): string => `${p}_grad`;
/** `<p>_grad.accumulation.buffer`: the accumulation buffer input (ORT owns it). */
export const bufferName = (p: string): string => `${p}_grad.accumulation.buffer`;
/** `<p>_grad.accumulation.out`: the accumulator's BOOL output. */
export const accumulatedName = (p: string): string => `${p}_grad.accumulation.out`;
/** `<p>::grad`: the gradient as a user output (added in memory by the engine, see adapt.ts). */
export const gradOutputName = (p: string): string => `${p}::grad`;

/** True for names ORT treats as gradient inputs or outputs. */
export function isGradientName(name: string): boolean {
  return /_grad(\.accumulation\.(buffer|out))?$/.test(name);
}

/**
 * PEFT's saved key (`...lora_A.weight`) for a parameter name found in artifacts: the saved form
 * itself, or PEFT's in-memory name with the adapter name (`...lora_A.default.weight`), which is what
 * `torch.onnx.export` of a PeftModel writes. Null for a name that is not a LoRA matrix.
 */
export function peftKeyOf(name: string): string | null {
  const m = /^(base_model\.model\..+\.lora_[AB])(?:\.([^.]+))?\.weight$/.exec(name);
  return m ? `${m[1]}.weight` : null;
}

/** PEFT's in-memory name of a saved key, with adapter name `adapter` (Python's artifacts). */
export function peftModuleName(key: string, adapter = "default"): string {
  const m = /^(.+\.lora_[AB])\.weight$/.exec(key);
  if (!m) throw new RangeError(`${key} is not a PEFT LoRA key (…lora_A.weight / …lora_B.weight)`);
  return `${m[1]}.${adapter}.weight`;
}
