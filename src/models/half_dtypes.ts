/**
 * The types 16-bit weights take in a backend's graphs: CPU engines (`wasm`, and onnxruntime-node's
 * CPU EP on `native-cpu`) cast float16 and bfloat16 to float32 next to each use, so weights stay as
 * stored. WebGPU has no bfloat16 at all and float16 only with the adapter's `shader-f16` feature:
 * on ORT Web's `webgpu` bfloat16 weights become float16 (exact for every value in float16's range,
 * which model weights are in), and without `shader-f16` both become float32. On `native-webgpu`
 * the adapter is Dawn's inside onnxruntime-node, whose features the package does not expose, and
 * a node its WebGPU EP cannot run falls back to the CPU silently (a probe would not tell): both
 * become float32 there, which every adapter runs.
 *
 * @module
 */

import { probeWebGpu } from "../runtime/backend.ts";

/** The types 16-bit weights enter a graph as (what the backend can cast from). */
export interface HalfDtypes {
  bfloat16: "bfloat16" | "float16" | "float32";
  float16: "float16" | "float32";
}

/** CPU engines cast both 16-bit types; a graph keeps them as stored. */
export const KEEP_HALF: HalfDtypes = { bfloat16: "bfloat16", float16: "float16" };

/** The 16-bit weight types for graphs run on `backend`. */
export async function halfDtypesFor(backend: string): Promise<HalfDtypes> {
  if (backend === "native-webgpu") return { bfloat16: "float32", float16: "float32" };
  if (backend !== "webgpu") return KEEP_HALF;
  const probe = await probeWebGpu();
  return probe.adapter?.features.includes("shader-f16")
    ? { bfloat16: "float16", float16: "float16" }
    : { bfloat16: "float32", float16: "float32" };
}

/** float32 values as IEEE half bits (round to nearest even), for WebGPU graphs that take bfloat16 as float16. */
export function toHalfBits(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i];
    const x = u[0];
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    let h: number;
    if (exp === 0xff) h = sign | 0x7c00 | (mant ? 0x200 : 0);
    else {
      const e = exp - 127 + 15;
      if (e >= 0x1f) h = sign | 0x7c00;
      else if (e <= 0) {
        if (e < -10) h = sign;
        else {
          const m = mant | 0x800000;
          const shift = 14 - e;
          let v = m >>> shift;
          const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
          if (rem > half || (rem === half && (v & 1))) v++;
          h = sign | v;
        }
      } else {
        let v = (e << 10) | (mant >>> 13);
        const rem = mant & 0x1fff;
        if (rem > 0x1000 || (rem === 0x1000 && (v & 1))) v++;
        h = sign | v;
      }
    }
    out[i] = h;
  }
  return out;
}
