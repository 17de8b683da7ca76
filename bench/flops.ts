/**
 * Counts the multiply-add FLOPs of a graph: 2·M·N·K per MatMul / Gemm (batch dims multiplied in),
 * from the shapes the op builders inferred, with the symbolic dims bound to the sizes of one run.
 *
 * Only matrix products are counted: they are what a backend's peak GFLOP/s measures, and the
 * elementwise work (softmax, layer norms, GELU, the optimizer) is a few percent of it on these
 * models. The count is of the graph as built, before ORT's optimizer (which fuses but does not
 * remove products).
 *
 * @module
 */

import type { Dim, Graph } from "../src/onnx/graph.ts";

/** Sizes of the symbolic dims of one run, e.g. `{ rows: 16, seq: 48 }`. */
export type Bindings = Readonly<Record<string, number>>;

/** The FLOPs of one run and how many products they came from. */
export interface FlopCount {
  flops: number;
  matmuls: number;
  /** FLOPs by the first named dims of each product's output, for a rough split (`"rows,seq,2048"`). */
  largest: { name: string; flops: number }[];
}

/** Resolves one dim: a number, a bound name, or a `a+b` / `k*a` expression of those. */
export function evalDim(d: Dim, b: Bindings): number {
  if (typeof d === "number") return d;
  if (d in b) return b[d];
  const plus = d.split("+");
  if (plus.length > 1) return plus.reduce((s, p) => s + evalDim(p.trim(), b), 0);
  const times = d.split("*");
  if (times.length > 1) return times.reduce((s, p) => s * evalDim(p.trim(), b), 1);
  if (/^\d+$/.test(d)) return Number(d);
  throw new RangeError(
    `Cannot size the symbolic dim ${JSON.stringify(d)}: bind it (known: ${Object.keys(b).join(", ")})`,
  );
}

/**
 * Binds the dims the op builders named after a Reshape with a -1 (e.g. `reshape_3` for the
 * flattened `[rows·seq, in]` of a LoRA weight gradient): each is the input's element count over the
 * output's other dims. Nodes are in topological order, so one pass suffices.
 */
export function bindReshapeDims(g: Graph, bindings: Bindings): Record<string, number> {
  const b: Record<string, number> = { ...bindings };
  const tryDim = (d: Dim): number | null => {
    try {
      return evalDim(d, b);
    } catch {
      return null;
    }
  };
  for (const n of g.nodes) {
    if (n.op !== "Reshape") continue;
    const x = g.values.get(n.inputs[0]), y = g.values.get(n.outputs[0]);
    if (!x || !y) continue;
    const unknown = y.shape.filter((d) => tryDim(d) === null);
    if (unknown.length !== 1 || typeof unknown[0] !== "string") continue;
    const inDims = x.shape.map(tryDim);
    if (inDims.some((d) => d === null)) continue;
    const total = (inDims as number[]).reduce((p, d) => p * d, 1);
    const known = y.shape.filter((d) => d !== unknown[0]).reduce((p: number, d) => p * tryDim(d)!, 1);
    if (known > 0) b[unknown[0]] = total / known;
  }
  return b;
}

/** Counts 2·M·N·K over every MatMul and Gemm of `g`. */
export function countMatmulFlops(g: Graph, given: Bindings): FlopCount {
  const bindings = bindReshapeDims(g, given);
  let flops = 0, matmuls = 0;
  const byNode: { name: string; flops: number }[] = [];
  for (const n of g.nodes) {
    if (n.op !== "MatMul" && n.op !== "Gemm") continue;
    const a = g.values.get(n.inputs[0]), out = g.values.get(n.outputs[0]);
    if (!a || !out) continue;
    let k: number;
    if (n.op === "Gemm") {
      const transA = n.attributes.transA?.value === 1;
      k = evalDim(transA ? a.shape[0] : a.shape[1], bindings);
    } else {
      k = evalDim(a.shape[a.shape.length - 1], bindings);
    }
    let outElems = 1;
    for (const d of out.shape) outElems *= evalDim(d, bindings);
    const f = 2 * outElems * k;
    flops += f;
    matmuls++;
    byNode.push({ name: `${n.op}[${out.shape.join(",")}]x${k}`, flops: f });
  }
  const merged = new Map<string, number>();
  for (const e of byNode) merged.set(e.name, (merged.get(e.name) ?? 0) + e.flops);
  const largest = [...merged].map(([name, f]) => ({ name, flops: f })).sort((x, y) => y.flops - x.flops).slice(0, 8);
  return { flops, matmuls, largest };
}

/**
 * FLOPs of one run of a graph, by its symbolic dims plus `positions`, the number of completion
 * tokens (the fused head runs on those only; every NonZero-made `positions_*` dim is bound to it).
 */
export function flopCounter(g: Graph): (b: Record<string, number>) => number {
  const positionDims = new Set<string>();
  for (const v of g.values.values()) {
    for (const d of v.shape) if (typeof d === "string" && d.startsWith("positions")) positionDims.add(d);
  }
  return (b) => {
    const all: Record<string, number> = { ...b };
    for (const d of positionDims) all[d] = b.positions;
    return countMatmulFlops(g, all).flops;
  };
}
