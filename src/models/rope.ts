/**
 * Rotary position embeddings (RoPE) as Llama, Qwen2/3, Gemma 3 and their scaled variants define
 * them (one set of tables per base: Gemma 3's sliding and full layers have their own).
 *
 * The inverse frequencies are computed in JS with float32 rounding at the same steps as
 * transformers (`1 / theta^(2i/d)` in float32, then the scaling rule), the angles and their
 * cos/sin in the graph in float32, exactly like `LlamaRotaryEmbedding.forward`. Rotation uses
 * `rotate_half(x) = cat(-x2, x1)`, written as a MatMul with a constant signed permutation (exact,
 * one op, and its gradient rule is MatMul's).
 *
 * Scaling (`rope_scaling` / `rope_parameters`):
 * - linear: every frequency divided by `factor`;
 * - llama3: wavelengths longer than `original_max_position_embeddings / low_freq_factor` divided by
 *   `factor`, shorter than `.../high_freq_factor` kept, smooth interpolation in between.
 *
 * @module
 */

import type { Graph, Value } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import type { RopeSpec } from "./config_base.ts";

const f32 = Math.fround;

/** The `headDim / 2` inverse frequencies of a rotary embedding, float32-rounded as transformers computes them. */
export function ropeInvFreq(headDim: number, rope: RopeSpec): Float32Array {
  const d = headDim;
  if (d % 2 !== 0) throw new RangeError(`RoPE needs an even head_dim, got ${d}`);
  const half = d / 2;
  const base = new Float64Array(half);
  for (let i = 0; i < half; i++) base[i] = f32(1 / f32(Math.pow(rope.theta, f32((2 * i) / d))));
  const s = rope.scaling;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    const inv = base[i];
    if (s === null) out[i] = inv;
    else if (s.type === "linear") out[i] = inv / s.factor;
    else {
      // transformers' _compute_llama3_parameters.
      const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
      const highWavelen = s.originalMaxPositions / s.highFreqFactor;
      const wavelen = (2 * Math.PI) / inv;
      if (wavelen < highWavelen) out[i] = inv;
      else if (wavelen > lowWavelen) out[i] = inv / s.factor;
      else {
        const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
        out[i] = (1 - smooth) * (inv / s.factor) + smooth * inv;
      }
    }
  }
  return out;
}

/** cos and sin of the rotation angles, shaped `[b, T, 1, headDim]` to broadcast over heads. */
export interface RopeTables {
  cos: Value;
  sin: Value;
  /** The rotate-half matrix (see {@link rotateHalfMatrix}), shared by every layer. */
  rotate: Value;
}

/**
 * Builds cos/sin for int64 positions `[b, T]` (b is the batch or 1).
 * Angles are `position * inv_freq` in float32, duplicated over both halves of the head.
 */
export function ropeTables(g: Graph, positions: Value, headDim: number, rope: RopeSpec): RopeTables {
  const inv = ropeInvFreq(headDim, rope);
  const d = headDim;
  const both = new Float32Array(d);
  both.set(inv, 0);
  both.set(inv, d / 2);
  const pos = op.unsqueeze(op.cast(positions, "float32"), [-1]); // [b, T, 1]
  const angles = op.mul(pos, g.constant(both, [d])); // [b, T, d]
  const rotate = g.constant(rotateHalfMatrix(d), [d, d]);
  return { cos: op.unsqueeze(op.cos(angles), [2]), sin: op.unsqueeze(op.sin(angles), [2]), rotate };
}

/** The `[d, d]` matrix R with `x @ R = rotate_half(x) = cat(-x[d/2:], x[:d/2])`. */
export function rotateHalfMatrix(d: number): Float32Array {
  const h = d / 2;
  const r = new Float32Array(d * d);
  for (let j = 0; j < h; j++) r[(j + h) * d + j] = -1;
  for (let j = h; j < d; j++) r[(j - h) * d + j] = 1;
  return r;
}

/** Applies RoPE to `x` `[B, T, heads, headDim]`: `x * cos + rotate_half(x) * sin`. */
export function applyRope(x: Value, tables: RopeTables): Value {
  const rot = op.matmul(x, tables.rotate);
  return op.add(op.mul(x, tables.cos), op.mul(rot, tables.sin));
}
