/**
 * The building blocks the GPT-2 and Llama graphs share: frozen weights as initializers (prepared
 * once per model: transposed to `[in, out]` and fused where that saves MatMuls), linear layers with
 * an optional LoRA branch, norms, activations and multi-head attention with grouped KV heads.
 *
 * Everything here uses ops that run on the WebGPU EP and that the autodiff registry differentiates
 * (MatMul, Add, Mul, Softmax, Reshape, Transpose, Split, Concat, LayerNormalization, ReduceMean,
 * Sqrt, Reciprocal, Tanh, Sigmoid, Erf, Relu).
 *
 * @module
 */

import type { Dim, Graph, TensorData, Value } from "../onnx/graph.ts";
import { GraphError } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { loraScaling } from "../lora/config.ts";
import type { LoadedModel } from "./load.ts";
import type { LoraAttachment } from "./forward.ts";
import { applyRope, type RopeTables } from "./rope.ts";

/** Prepared (transposed / fused) weights, per model weight map, shared by every graph built from it. */
const PREPARED = new WeakMap<Map<string, TensorData>, Map<string, TensorData>>();

/** `[rows, cols]` float32 → its transpose `[cols, rows]` (blocked, for cache locality on big matrices). */
export function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  const B = 64;
  for (let i0 = 0; i0 < rows; i0 += B) {
    const i1 = Math.min(rows, i0 + B);
    for (let j0 = 0; j0 < cols; j0 += B) {
      const j1 = Math.min(cols, j0 + B);
      for (let i = i0; i < i1; i++) {
        const src = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = data[src + j];
      }
    }
  }
  return out;
}

/** Stacks `nn.Linear` weights `[out_k, in]` along out and transposes: `[in, Σ out_k]`. */
export function fuseLinearWeights(parts: readonly TensorData[]): TensorData {
  const inF = parts[0].shape[1];
  const outF = parts.reduce((s, p) => s + p.shape[0], 0);
  const out = new Float32Array(inF * outF);
  let col = 0;
  for (const p of parts) {
    const rows = p.shape[0];
    const d = p.data as Float32Array;
    for (let r = 0; r < rows; r++) {
      const src = r * inF;
      for (let i = 0; i < inF; i++) out[i * outF + col + r] = d[src + i];
    }
    col += rows;
  }
  return { dtype: "float32", shape: [inF, outF], data: out };
}

/** Concatenates 1-D biases. */
export function concatVectors(parts: readonly TensorData[]): TensorData {
  const n = parts.reduce((s, p) => s + p.data.length, 0);
  const out = new Float32Array(n);
  let k = 0;
  for (const p of parts) {
    out.set(p.data as Float32Array, k);
    k += p.data.length;
  }
  return { dtype: "float32", shape: [n], data: out };
}

/** Graph construction state of one forward pass: the graph, the model, the LoRA params in use. */
export class ModelBuilder {
  readonly g: Graph;
  readonly model: LoadedModel;
  readonly lora: LoraAttachment | undefined;
  readonly scaling: number;
  #used = new Set<string>();

  constructor(g: Graph, model: LoadedModel, lora?: LoraAttachment) {
    this.g = g;
    this.model = model;
    this.lora = lora;
    this.scaling = lora ? loraScaling(lora.config) : 0;
    if (lora) {
      for (const [key, v] of lora.params) {
        if (v.graph !== g) throw new GraphError(`LoRA parameter ${key} belongs to another graph`);
        if (v.dtype !== "float32") throw new GraphError(`LoRA parameter ${key} must be float32, got ${v.dtype}`);
      }
    }
  }

  /** A model weight (Hugging Face name) as an initializer; the same name is shared within a graph. */
  weight(name: string): Value {
    const t = this.model.weights.get(name);
    if (!t) throw new GraphError(`The model has no weight ${name}`);
    return this.#initializer(name, t);
  }

  /** A derived weight (transposed, fused), computed once per model and cached. */
  derived(name: string, make: () => TensorData): Value {
    let cache = PREPARED.get(this.model.weights);
    if (!cache) {
      cache = new Map();
      PREPARED.set(this.model.weights, cache);
    }
    let t = cache.get(name);
    if (!t) {
      t = make();
      cache.set(name, t);
    }
    return this.#initializer(name, t);
  }

  /** `W^T` `[in, out]` of an `nn.Linear` weight `[out, in]`. */
  linearWeightT(name: string): Value {
    return this.derived(`${name}_t`, () => {
      const w = this.model.weights.get(name);
      if (!w) throw new GraphError(`The model has no weight ${name}`);
      return {
        dtype: "float32",
        shape: [w.shape[1], w.shape[0]],
        data: transpose2d(w.data as Float32Array, w.shape[0], w.shape[1]),
      };
    });
  }

  #initializer(name: string, t: TensorData): Value {
    const existing = this.g.values.get(name);
    if (existing) {
      if (this.g.initializers.get(name) === t) return existing;
      throw new GraphError(`Graph value ${name} already exists and is not this model's weight`);
    }
    return this.g.initializer(name, t);
  }

  /**
   * The LoRA branch of a module, `scaling · (x Aᵀ) Bᵀ`, or null when the module has no adapter.
   * `x` is `[..., in]`; the result `[..., out]`.
   */
  loraDelta(x: Value, module: string): Value | null {
    if (!this.lora) return null;
    const keyA = `base_model.model.${module}.lora_A.weight`;
    const keyB = `base_model.model.${module}.lora_B.weight`;
    const a = this.lora.params.get(keyA), b = this.lora.params.get(keyB);
    if (!a && !b) return null;
    if (!a || !b) throw new GraphError(`LoRA for ${module} needs both ${keyA} and ${keyB}`);
    const inF = x.shape[x.shape.length - 1];
    if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== inF || b.shape[1] !== a.shape[0]) {
      throw new GraphError(
        `LoRA shapes of ${module} do not fit: A [${a.shape}] must be [r, ${inF}] and B [${b.shape}] must be [out, r]`,
      );
    }
    this.#used.add(keyA);
    this.#used.add(keyB);
    const xa = op.matmul(x, op.transpose(a, [1, 0]));
    const scaled = this.scaling === 1 ? xa : op.mul(xa, this.g.scalar(this.scaling));
    return op.matmul(scaled, op.transpose(b, [1, 0]));
  }

  /** Throws when some LoRA parameter matched no module (a naming or target mismatch). */
  checkAllLoraUsed(): void {
    if (!this.lora) return;
    const unused = [...this.lora.params.keys()].filter((k) => !this.#used.has(k));
    if (unused.length > 0) {
      throw new GraphError(
        `${unused.length} LoRA parameter(s) match no module of this ${this.model.arch} model: ${
          unused.slice(0, 4).join(", ")
        }`,
      );
    }
  }
}

/** `x W + b` with `W` already `[in, out]`, plus the module's LoRA branch when present. */
export function linear(mb: ModelBuilder, x: Value, w: Value, b: Value | null, module?: string): Value {
  let y = op.matmul(x, w);
  if (b) y = op.add(y, b);
  if (module) {
    const d = mb.loraDelta(x, module);
    if (d) y = op.add(y, d);
  }
  return y;
}

/** Adds the module's LoRA branch (computed from `x`) to `y`, if any. */
export function withLora(mb: ModelBuilder, y: Value, x: Value, module: string): Value {
  const d = mb.loraDelta(x, module);
  return d ? op.add(y, d) : y;
}

/** RMSNorm as Llama: `w · x / sqrt(mean(x²) + eps)`. */
export function rmsNorm(x: Value, w: Value, eps: number): Value {
  const g = x.graph;
  const variance = op.reduceMean(op.mul(x, x), [-1], true);
  const inv = op.reciprocal(op.sqrt(op.add(variance, g.scalar(eps))));
  return op.mul(op.mul(x, inv), w);
}

/** The MLP activation of a config. */
export function activation(x: Value, kind: "gelu_new" | "gelu" | "silu" | "relu"): Value {
  const g = x.graph;
  switch (kind) {
    case "silu":
      return op.mul(x, op.sigmoid(x));
    case "relu":
      return op.relu(x);
    case "gelu":
      // 0.5 x (1 + erf(x / √2))
      return op.mul(op.mul(x, g.scalar(0.5)), op.add(op.erf(op.mul(x, g.scalar(Math.SQRT1_2))), g.scalar(1)));
    case "gelu_new": {
      // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
      const x3 = op.mul(op.mul(x, x), x);
      const inner = op.mul(op.add(x, op.mul(x3, g.scalar(0.044715))), g.scalar(Math.sqrt(2 / Math.PI)));
      return op.mul(op.mul(x, g.scalar(0.5)), op.add(op.tanh(inner), g.scalar(1)));
    }
  }
}

/** Reshape to a constant target (0 = copy, -1 = infer) whose result shape the caller states. */
export function reshapeTo(x: Value, target: readonly number[], shape: readonly Dim[]): Value {
  const g = x.graph;
  return g.addNode("Reshape", [x, g.int64s(target)], [{ dtype: x.dtype, shape }])[0];
}

/** Concat along an axis whose result shape the caller states (symbolic sums get the given name). */
export function concatTo(xs: readonly Value[], axis: number, shape: readonly Dim[]): Value {
  const g = xs[0].graph;
  return g.addNode("Concat", xs, [{ dtype: xs[0].dtype, shape }], { axis: { type: "int", value: axis } })[0];
}

/** The symbolic and static sizes attention works with. */
export interface AttentionDims {
  batch: Dim;
  seq: Dim;
  past: Dim;
  /** past + seq */
  total: Dim;
  heads: number;
  kvHeads: number;
  headDim: number;
}

/** Name of `rep · seq` (query rows per KV head in the grouped layout). */
export function groupedRows(d: AttentionDims): Dim {
  const rep = d.heads / d.kvHeads;
  if (rep === 1) return d.seq;
  return typeof d.seq === "number" ? rep * d.seq : `${rep}*${d.seq}`;
}

/** Outputs of {@link attention}. */
export interface AttentionResult {
  /** `[B, T, heads · headDim]`, before the output projection. */
  out: Value;
  /** Keys and values including the past, `[B, kvHeads, past + T, headDim]` (keys after RoPE). */
  key: Value;
  value: Value;
}

/**
 * Scaled dot-product attention with an additive bias (causal + padding).
 *
 * With grouped KV heads (`heads = rep · kvHeads`) the queries of the `rep` heads that share a KV
 * head are stacked along the rows (`[B, kvHeads, rep · T, d]`), so no KV head is ever copied and
 * every MatMul has equal batch dims. `bias` is `[B or 1, 1, rep · T, past + T]` (see
 * `attentionBias`).
 */
export function attention(
  q: Value,
  k: Value,
  v: Value,
  dims: AttentionDims,
  bias: Value,
  rope: RopeTables | null,
  past: { key: Value; value: Value } | undefined,
): AttentionResult {
  const g = q.graph;
  const { batch: B, seq: T, total: S, heads: H, kvHeads: KV, headDim: D } = dims;
  const rep = H / KV;
  let q4 = reshapeTo(q, [0, 0, H, D], [B, T, H, D]);
  let k4 = reshapeTo(k, [0, 0, KV, D], [B, T, KV, D]);
  const v4 = reshapeTo(v, [0, 0, KV, D], [B, T, KV, D]);
  if (rope) {
    q4 = applyRope(q4, rope);
    k4 = applyRope(k4, rope);
  }
  q4 = op.mul(q4, g.scalar(1 / Math.sqrt(D)));
  let key = op.transpose(k4, [0, 2, 1, 3]); // [B, KV, T, D]
  let value = op.transpose(v4, [0, 2, 1, 3]);
  if (past) {
    key = concatTo([past.key, key], 2, [B, KV, S, D]);
    value = concatTo([past.value, value], 2, [B, KV, S, D]);
  }
  const rows = groupedRows(dims);
  let qg: Value;
  if (rep === 1) qg = op.transpose(q4, [0, 2, 1, 3]); // [B, H, T, D]
  else {
    const q5 = reshapeTo(q4, [0, 0, KV, rep, D], [B, T, KV, rep, D]);
    qg = reshapeTo(op.transpose(q5, [0, 2, 3, 1, 4]), [0, KV, -1, D], [B, KV, rows, D]);
  }
  const scores = op.add(op.matmul(qg, op.transpose(key, [0, 1, 3, 2])), bias); // [B, KV, rows, S]
  const ctx = op.matmul(op.softmax(scores, -1), value); // [B, KV, rows, D]
  let out: Value;
  if (rep === 1) out = op.transpose(ctx, [0, 2, 1, 3]);
  else {
    const c5 = reshapeTo(ctx, [0, KV, rep, -1, D], [B, KV, rep, T, D]);
    out = op.transpose(c5, [0, 3, 1, 2, 4]); // [B, T, KV, rep, D]
  }
  return { out: reshapeTo(out, [0, 0, H * D], [B, T, H * D]), key, value };
}
