/**
 * The types 16-bit weights take in a backend's graphs: CPU engines cast float16 and bfloat16 to
 * float32 next to each use, so weights stay as stored. WebGPU has no bfloat16 at all and float16
 * only with the adapter's `shader-f16` feature: there bfloat16 weights become float16 (exact for
 * every value in float16's range, which model weights are in), and without `shader-f16` both
 * become float32.
 *
 * @module
 */

import { probeWebGpu } from "../runtime/backend.ts";
import { type HalfDtypes, KEEP_HALF } from "./layers.ts";

/** The 16-bit weight types for graphs run on `backend`. */
export async function halfDtypesFor(backend: string): Promise<HalfDtypes> {
  if (backend !== "webgpu") return KEEP_HALF;
  const probe = await probeWebGpu();
  return probe.adapter?.features.includes("shader-f16")
    ? { bfloat16: "float16", float16: "float16" }
    : { bfloat16: "float32", float16: "float32" };
}
