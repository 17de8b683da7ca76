/**
 * The building blocks the GPT-2 and Llama graphs share: frozen weights as initializers in their
 * stored layout and type, linear layers with an optional LoRA branch, norms, activations and
 * multi-head attention with grouped KV heads.
 *
 * Weights are never transposed, fused or upcast in JS: an `nn.Linear` weight `[out, in]` is used
 * through Gemm's `transB` flag, a 16-bit weight through a Cast next to its use. In the "once" mode
 * (training, scoring) every use reads the single stored copy through `dependOn(weight, input)`, so
 * ORT neither folds a float32 or transposed copy of it at session creation nor prepacks one, and a
 * float32 cast lives only around its MatMul (the backward pass rebuilds it, see `setRecompute`).
 *
 * Everything here uses ops that run on the WebGPU EP and that the autodiff registry differentiates
 * (MatMul, Gemm, Add, Mul, Softmax, Reshape, Transpose, Split, Concat, LayerNormalization,
 * ReduceMean, Sqrt, Reciprocal, Tanh, Sigmoid, Erf, Relu, Cast, Gather).
 *
 * @module
 */

import type { DType } from "../onnx/dtype.ts";
import type { Dim, Graph, TensorData, Value } from "../onnx/graph.ts";
import { GraphError } from "../onnx/graph.ts";
import * as op from "../onnx/ops.ts";
import { setCustomGradient, setRecompute } from "../autodiff/custom.ts";
import { backward } from "../autodiff/backward.ts";
import { loraScaling } from "../lora/config.ts";
import { type LoadedModel, weightsReleased } from "./load.ts";
import type { LoraAttachment } from "./forward.ts";
import { applyRope, type RopeTables } from "./rope.ts";
import { tensorToFloat32 } from "./safetensors.ts";
import { type HalfDtypes, KEEP_HALF, toHalfBits } from "./half_dtypes.ts";

/** How a model graph is built: how it holds its frozen weights, whether layers are recomputed. */
export interface BuildOptions {
  /**
   * `"once"` (default; training and scoring): every use reads the one stored copy at run time,
   * with nothing folded, prepacked or cast ahead (see the module doc). `"constant"` (generation):
   * plain constants that ORT may fold into float32 and prepack, for fast small-batch MatMuls at the
   * cost of extra copies.
   */
  weights?: "once" | "constant";
  /** Types of 16-bit weights in the graph (default: as stored). */
  halfDtypes?: HalfDtypes;
  /**
   * Recompute each decoder layer's activations in the backward pass from the layer's input
   * (gradient checkpointing): only one `[B, T, hidden]` tensor per layer is kept between the
   * forward and the backward pass, for about one more forward pass of compute. Default false.
   */
  recompute?: boolean;
}

/** Layout of a 2-D weight: `nn.Linear` stores `[out, in]`, GPT-2's Conv1D `[in, out]`. */
export type WeightLayout = "out_in" | "in_out";

/** Weights converted for one graph (WebGPU's 16-bit types), so a graph shares one converted copy. */
const CONVERTED = new WeakMap<Graph, Map<string, TensorData>>();

/** Graph construction state of one forward pass: the graph, the model, the LoRA params in use. */
export class ModelBuilder {
  readonly g: Graph;
  readonly model: LoadedModel;
  readonly lora: LoraAttachment | undefined;
  readonly scaling: number;
  readonly once: boolean;
  readonly halfDtypes: HalfDtypes;
  readonly recompute: boolean;
  #used = new Set<string>();

  constructor(g: Graph, model: LoadedModel, lora?: LoraAttachment, options: BuildOptions = {}) {
    this.g = g;
    this.model = model;
    this.lora = lora;
    this.scaling = lora ? loraScaling(lora.config) : 0;
    this.once = (options.weights ?? "once") === "once";
    this.halfDtypes = options.halfDtypes ?? KEEP_HALF;
    this.recompute = options.recompute ?? false;
    if (lora) {
      for (const [key, v] of lora.params) {
        if (v.graph !== g) throw new GraphError(`LoRA parameter ${key} belongs to another graph`);
        if (v.dtype !== "float32") throw new GraphError(`LoRA parameter ${key} must be float32, got ${v.dtype}`);
      }
    }
  }

  /**
   * A model weight (Hugging Face name) as an initializer in its stored type (or the type
   * `halfDtypes` maps it to); the same name is shared within a graph.
   */
  weight(name: string): Value {
    const t = this.model.weights.get(name);
    if (!t) {
      throw new GraphError(
        weightsReleased(this.model.weights)
          ? `The weights of ${this.model.dir} were released (releaseWeights) once its sessions existed: load the model again to build graphs from it`
          : `The model has no weight ${name}`,
      );
    }
    return this.#initializer(name, this.#converted(name, t));
  }

  /**
   * A weight as float32 for one use: read after `after` in the "once" mode (see the module doc)
   * and cast when stored in 16 bits. The backward pass rebuilds it instead of keeping it.
   */
  weight32(name: string, after: Value | null): Value {
    let w = this.weight(name);
    if (this.once && after) w = op.dependOn(w, after);
    const out = op.cast(w, "float32");
    if (this.once && out !== this.g.values.get(name)) setRecompute(out, (dep) => this.weight32(name, dep));
    return out;
  }

  #converted(name: string, t: TensorData): TensorData {
    const want: DType = t.dtype === "bfloat16"
      ? this.halfDtypes.bfloat16
      : t.dtype === "float16"
      ? this.halfDtypes.float16
      : t.dtype;
    if (want === t.dtype) return t;
    let cache = CONVERTED.get(this.g);
    if (!cache) CONVERTED.set(this.g, cache = new Map());
    let c = cache.get(name);
    if (!c) {
      const f32 = tensorToFloat32(t);
      c = { dtype: want, shape: t.shape, data: want === "float16" ? toHalfBits(f32) : f32 };
      cache.set(name, c);
    }
    return c;
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
   * One decoder layer, `body(h)`. With `recompute`, its output gets a custom gradient that
   * rebuilds the layer from `h` once the output's cotangent exists (so ORT cannot run it early)
   * and differentiates the rebuilt copy: the forward pass's own activations die inside the layer.
   */
  layer(h: Value, body: (x: Value) => Value): Value {
    if (!this.recompute) return body(h);
    const g = this.g;
    const start = g.nodes.length;
    const out = body(h);
    const region = g.nodes.slice(start);
    // The nodes `out` depends on within the layer, in order (present-KV branches are left out).
    const needed = new Set([out.name]);
    const keep: boolean[] = new Array(region.length).fill(false);
    for (let i = region.length - 1; i >= 0; i--) {
      if (!region[i].outputs.some((o) => needed.has(o))) continue;
      keep[i] = true;
      for (const x of region[i].inputs) if (x) needed.add(x);
    }
    const nodes = region.filter((_, i) => keep[i]);
    const params = this.lora ? [...this.lora.params.values()].filter((p) => needed.has(p.name)) : [];
    if (out !== g.values.get(region.at(-1)?.outputs[0] ?? "")) {
      throw new GraphError(`layer(): the body's result must be its last node's only output`);
    }
    setCustomGradient(out, {
      inputs: [h, ...params],
      vjp: (dy) => {
        const start = op.dependOn(h, dy);
        const map = new Map<string, string>([[h.name, start.name]]);
        for (const n of nodes) {
          const ins = n.inputs.map((x) => (x ? g.get(map.get(x) ?? x) : null));
          const outs = g.addNode(
            n.op,
            ins,
            n.outputs.map((o) => ({ dtype: g.get(o).dtype, shape: g.get(o).shape })),
            n.attributes,
            n.domain,
          );
          n.outputs.forEach((o, i) => map.set(o, outs[i].name));
        }
        return backward(g.get(map.get(out.name)!), [start, ...params], { seed: dy });
      },
    });
    return out;
  }

  /** A token embedding lookup: rows of the stored `[vocab, hidden]` table, cast to float32. */
  embed(name: string, ids: Value): Value {
    return op.cast(op.gather(this.weight(name), ids, 0), "float32");
  }

  /**
   * `x W + b` for a stored weight (`[out, in]` used as `x Wᵀ` through Gemm's transB, `[in, out]`
   * through MatMul), plus the module's LoRA branch when present.
   */
  linear(x: Value, weight: string, bias: string | null, layout: WeightLayout, module?: string): Value {
    const b = bias ? this.bias32(bias) : null;
    let y: Value;
    if (layout === "in_out") {
      y = op.matmul(x, this.weight32(weight, x));
      if (b) y = op.add(y, b);
    } else {
      const { flat, restore } = flatten(x);
      const w = this.weight32(weight, flat);
      y = restore(op.gemm(flat, w, b, { transB: true }), w.shape[0] as number);
    }
    if (module) {
      const d = this.loraDelta(x, module);
      if (d) y = op.add(y, d);
    }
    return y;
  }

  /** A bias or norm weight as float32 (small: a plain cast, which ORT may fold). */
  bias32(name: string): Value {
    return op.cast(this.weight(name), "float32");
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

/**
 * `x [..., in]` as `[rows, in]` for a Gemm, and the way back: `restore(y, out)` reshapes `[rows, out]`
 * to `[..., out]` (the leading shape read from `x` at run time when it is symbolic).
 */
export function flatten(x: Value): { flat: Value; restore: (y: Value, out: number) => Value } {
  const r = x.shape.length;
  const inF = x.shape[r - 1];
  if (r === 2) return { flat: x, restore: (y) => y };
  if (typeof inF !== "number") throw new GraphError(`flatten: the last dim of ${x.name} must be static`);
  const g = x.graph;
  const flat = op.reshape(x, [-1, inF]);
  const lead = x.shape.slice(0, -1);
  const restore = (y: Value, out: number) => {
    const symbolic = lead.filter((d) => typeof d !== "number").length;
    const target = symbolic <= 1 && !lead.includes(0)
      ? g.int64s([...lead.map((d) => (typeof d === "number" ? d : -1)), out])
      : op.concat([op.shapeOf(x, 0, r - 1), g.int64s([out])], 0);
    return g.addNode("Reshape", [y, target], [{ dtype: y.dtype, shape: [...lead, out] }])[0];
  };
  return { flat, restore };
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
