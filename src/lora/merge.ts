/**
 * Folding a LoRA adapter into the base weights, like PEFT's `merge_and_unload`:
 *
 *   Linear  (W stored [out, in]):  W' = W + s · B A
 *   Conv1D  (W stored [in, out]):  W' = W + s · (B A)ᵀ
 *
 * with A [r, in], B [out, r] and s = {@link loraScaling}. Sums are accumulated in float64.
 *
 * @module
 */

import type { TensorData } from "../onnx/graph.ts";
import { tensorToFloat32 } from "../models/safetensors.ts";
import type { ModelConfig } from "../models/config.ts";
import { AdapterError, loraScaling } from "./config.ts";
import type { LoraAdapter } from "./adapter.ts";
import { loraTargets } from "./targets.ts";

/**
 * New base weights with the adapter merged in. The input map and its tensors are not modified;
 * untouched tensors are shared with the input. float32 and float64 base weights keep their dtype;
 * float16 and bfloat16 ones become float32 (the merged sum is not rounded back to 16 bits).
 *
 * @throws {AdapterError} when a base weight is missing, has the wrong shape or a non-float dtype
 */
export function mergeAdapter(
  weights: Map<string, TensorData>,
  adapter: LoraAdapter,
  modelConfig: ModelConfig,
): Map<string, TensorData> {
  const s = loraScaling(adapter.config);
  const r = adapter.config.r;
  const out = new Map(weights);
  for (const t of loraTargets(modelConfig, adapter.config)) {
    const w = weights.get(t.baseWeight);
    if (w === undefined) throw new AdapterError(`Cannot merge: base weight "${t.baseWeight}" is missing`);
    const expect = t.fanInFanOut ? [t.inFeatures, t.outFeatures] : [t.outFeatures, t.inFeatures];
    if (w.shape.length !== 2 || w.shape[0] !== expect[0] || w.shape[1] !== expect[1]) {
      throw new AdapterError(
        `Cannot merge: base weight "${t.baseWeight}" has shape [${w.shape.join(", ")}]; expected [${
          expect.join(", ")
        }]`,
      );
    }
    if (w.dtype !== "float32" && w.dtype !== "float64" && w.dtype !== "float16" && w.dtype !== "bfloat16") {
      throw new AdapterError(`Cannot merge: base weight "${t.baseWeight}" is ${w.dtype}, not a float type`);
    }
    const a = adapter.tensors.get(t.keyA)?.data, b = adapter.tensors.get(t.keyB)?.data;
    if (a === undefined || b === undefined) {
      throw new AdapterError(`Cannot merge: adapter lacks "${t.keyA}" or "${t.keyB}"`);
    }
    const src = w.dtype === "float64" ? w.data as Float64Array : tensorToFloat32(w);
    const merged = w.dtype === "float64" ? new Float64Array(src) : new Float32Array(src);
    const nIn = t.inFeatures, nOut = t.outFeatures;
    for (let o = 0; o < nOut; o++) {
      for (let i = 0; i < nIn; i++) {
        let acc = 0;
        for (let k = 0; k < r; k++) acc += (b[o * r + k] as number) * (a[k * nIn + i] as number);
        const idx = t.fanInFanOut ? i * nOut + o : o * nIn + i;
        merged[idx] = src[idx] + s * acc;
      }
    }
    out.set(t.baseWeight, { dtype: w.dtype === "float64" ? "float64" : "float32", shape: [...w.shape], data: merged });
  }
  return out;
}
