/**
 * The gradient check shared by the rule tests: one graph per case outputs y = f(x) and the VJP
 * J^T v for a cotangent input v (backward with `seed: v`). One run gives the VJP; two more at
 * x +- h d give the central difference of <v, f> along a random direction d, so
 *
 *   <v, (f(x + h d) - f(x - h d)) / 2h>  ~=  <v, J d>  =  <J^T v, d>
 *
 * checks the rule against finite differences and the VJP inner-product identity at once.
 */

import type { DType } from "../../src/onnx/dtype.ts";
import { Graph, type Value } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { type Engine, type GraphSession, type OrtTensor, readTensor } from "../../src/runtime/session.ts";
import type { Rng } from "../../src/util/rng.ts";
import { backward } from "../../src/autodiff/mod.ts";
import type { InputSpec, RuleCase } from "./_cases.ts";

/** A built check graph. */
export interface CheckGraph {
  graph: Graph;
  /** Indices of the differentiated (float) inputs. */
  floatInputs: number[];
  /** Shape of y, resolved for feeding v (from a probe run). */
  dtype: DType;
}

/** Input names are `x0, x1, ...`; the cotangent is `v`; outputs `y` and `g0, g1, ...`. */
export function buildCheckGraph(c: RuleCase, dtype: DType, prefix = ""): CheckGraph {
  const graph = new Graph(`check_${c.name}`);
  return addCheck(graph, c, dtype, prefix);
}

/**
 * Adds one case's check to an existing graph (the WebGPU test packs many into one). A symbolic dim
 * names one size in the whole graph (gradients read sizes from the graph's inputs), so a case's
 * dims get the prefix too: `b` of two cases may be two sizes.
 */
export function addCheck(graph: Graph, c: RuleCase, dtype: DType, prefix = ""): CheckGraph {
  const dims = (s: InputSpec) => s.shape.map((d) => (typeof d === "string" ? `${prefix}${d}` : d));
  const xs = c.inputs.map((s, i) => graph.input(`${prefix}x${i}`, inputDtype(s, dtype), dims(s)));
  const y = c.build(xs, graph);
  const v = graph.input(`${prefix}v`, y.dtype, y.shape);
  const floatInputs = c.inputs.map((s, i) => (isFloatSpec(s) ? i : -1)).filter((i) => i >= 0);
  const grads = backward(y, floatInputs.map((i) => xs[i]), { seed: v });
  graph.output(y, `${prefix}y`);
  grads.forEach((gv: Value, k) => graph.output(gv, `${prefix}g${floatInputs[k]}`));
  return { graph, floatInputs, dtype: y.dtype };
}

function isFloatSpec(s: InputSpec): boolean {
  return s.kind !== "index" && s.kind !== "bool";
}

function inputDtype(s: InputSpec, dtype: DType): DType {
  if (s.kind === "index") return "int64";
  if (s.kind === "bool") return "bool";
  return s.dtype ?? dtype;
}

function dimsOf(s: InputSpec): number[] {
  if (s.dims) return s.dims;
  if (s.shape.some((d) => typeof d !== "number")) throw new Error("symbolic input without dims");
  return s.shape as number[];
}

function size(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Random data of a case: x per input, a direction d per float input. */
export interface CaseData {
  xs: (Float64Array | BigInt64Array | Uint8Array)[];
  ds: Float64Array[];
}

/** Draws inputs and directions from a seeded generator. */
export function drawData(c: RuleCase, rng: Rng): CaseData {
  const xs = c.inputs.map((s) => {
    const k = size(dimsOf(s));
    if (s.kind === "index") return BigInt64Array.from({ length: k }, () => BigInt(rng.int(s.max ?? 1)));
    if (s.kind === "bool") return Uint8Array.from({ length: k }, () => rng.int(2));
    if (s.kind === "positive") return Float64Array.from({ length: k }, () => 0.5 + 1.5 * rng.next());
    return Float64Array.from({ length: k }, () => rng.normal());
  });
  const ds = c.inputs.filter(isFloatSpec).map((s) =>
    Float64Array.from({ length: size(dimsOf(s)) }, () => rng.normal())
  );
  return { xs, ds };
}

function tensorOf(e: Engine, data: Float64Array | BigInt64Array | Uint8Array, s: InputSpec, dtype: DType): OrtTensor {
  const dims = dimsOf(s);
  if (s.kind === "bool") return e.tensor(data as Uint8Array, dims, "bool");
  if (s.kind === "index") return e.tensor(data as BigInt64Array, dims);
  const t = s.dtype ?? dtype;
  return e.tensor(t === "float32" ? Float32Array.from(data as Float64Array) : data as Float64Array, dims);
}

/** Feeds for one evaluation at x + h d (h = 0 for the base point). */
export function feedsAt(
  e: Engine,
  c: RuleCase,
  dtype: DType,
  data: CaseData,
  h: number,
  prefix = "",
): Record<string, OrtTensor> {
  const feeds: Record<string, OrtTensor> = {};
  let k = 0;
  c.inputs.forEach((s, i) => {
    let x = data.xs[i];
    if (isFloatSpec(s)) {
      const d = data.ds[k++];
      x = (x as Float64Array).map((xi, j) => xi + h * d[j]);
    }
    feeds[`${prefix}x${i}`] = tensorOf(e, x, s, dtype);
  });
  return feeds;
}

/** Result of one directional check. */
export interface CheckResult {
  fd: number;
  vjp: number;
  grads: Float64Array[];
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** A cotangent v like y (drawn once the shape of y is known from the base run). */
export function drawCotangent(
  e: Engine,
  dims: readonly number[],
  dtype: DType,
  rng: Rng,
): { v: OrtTensor; data: Float64Array } {
  const data = Float64Array.from({ length: size(dims) }, () => rng.normal());
  const v = e.tensor(dtype === "float32" ? Float32Array.from(data) : data, dims);
  return { v, data };
}

/** Runs one case: VJP at x, central difference of <v, f> along d. */
export async function checkOnce(
  e: Engine,
  s: GraphSession,
  c: RuleCase,
  cg: CheckGraph,
  dtype: DType,
  rng: Rng,
  h: number,
): Promise<CheckResult> {
  const data = drawData(c, rng);
  const { v, data: vData } = drawCotangent(e, await yDims(s, e, c, dtype, data), cg.dtype, rng);
  const base = await s.run({ ...feedsAt(e, c, dtype, data, 0), v });
  const plus = await s.run({ ...feedsAt(e, c, dtype, data, h), v });
  const minus = await s.run({ ...feedsAt(e, c, dtype, data, -h), v });
  const yp = Float64Array.from(await readTensor(plus.y) as Float64Array);
  const ym = Float64Array.from(await readTensor(minus.y) as Float64Array);
  const fd = (dot(vData, yp) - dot(vData, ym)) / (2 * h);
  const grads: Float64Array[] = [];
  let vjp = 0;
  for (let k = 0; k < cg.floatInputs.length; k++) {
    const gk = Float64Array.from(await readTensor(base[`g${cg.floatInputs[k]}`]) as Float64Array);
    grads.push(gk);
    vjp += dot(gk, data.ds[k]);
  }
  return { fd, vjp, grads };
}

const yDimsCache = new WeakMap<GraphSession, number[]>();

async function yDims(s: GraphSession, e: Engine, c: RuleCase, dtype: DType, data: CaseData): Promise<number[]> {
  const hit = yDimsCache.get(s);
  if (hit) return hit;
  const dims = await outputDims(e, c, dtype, data);
  yDimsCache.set(s, dims);
  return dims;
}

/**
 * The runtime dims of a case's output. v is shaped like y, whose dims (fresh symbols from
 * Reshape/Slice included) are easiest to learn from one run of a forward-only graph.
 */
export async function outputDims(e: Engine, c: RuleCase, dtype: DType, data: CaseData): Promise<number[]> {
  const g = new Graph("probe");
  const xs = c.inputs.map((sp, i) => g.input(`x${i}`, inputDtype(sp, dtype), sp.shape));
  g.output(c.build(xs, g), "y");
  const ps = await e.createSession(serializeModel(g));
  const out = await ps.run(feedsAt(e, c, dtype, data, 0));
  await ps.release();
  return [...out.y.dims];
}

/** Asserts |fd - vjp| <= atol + rtol * max(|fd|, |vjp|) with a message naming the case. */
export function assertClose(label: string, r: CheckResult, rtol: number, atol: number): void {
  const err = Math.abs(r.fd - r.vjp);
  const bound = atol + rtol * Math.max(Math.abs(r.fd), Math.abs(r.vjp));
  if (!(err <= bound)) {
    throw new Error(`${label}: finite difference ${r.fd} vs <J^T v, d> ${r.vjp} (error ${err} > ${bound})`);
  }
}
