/**
 * Where a training step's time goes, by running sub-graphs: every MatMul / Gemm of the fused step
 * is grouped by its bound input shapes, each group is timed alone (one single-node session, best of
 * a few runs) and multiplied by its count; the rest of the measured step time is everything else
 * (elementwise ops, softmax, layer norms, gathers/scatters, transposes, copying state in and out).
 *
 * ORT Web's own profiler (`enableProfiling`) writes its trace through a file stream the wasm build
 * has no filesystem for, so it cannot be read back here; this is the per-node substitute.
 *
 * Usage: `deno run -A bench/profile.ts [tiny|small] [--threads N] [--backend wasm|webgpu|native-cpu|native-webgpu]`
 *
 * @module
 */

import { padPairs } from "../src/data/batching.ts";
import { initLoraAdapter } from "../src/lora/adapter.ts";
import { createLoraConfig } from "../src/lora/config.ts";
import { loadModel } from "../src/models/load.ts";
import { Graph, type Node } from "../src/onnx/graph.ts";
import { serializeModel } from "../src/onnx/serialize.ts";
import { adamw } from "../src/optim/adamw.ts";
import { configureRuntime } from "../src/runtime/ort.ts";
import { isBackendName } from "../src/runtime/backends.ts";
import { Engine, type OrtTensor } from "../src/runtime/session.ts";
import { buildPreferenceGraph, INPUT } from "../src/train/preference_graph.ts";
import { compileStep } from "../src/train/step.ts";
import { StepRunner } from "../src/train/step_runner.ts";
import { Rng } from "../src/util/rng.ts";
import { bindReshapeDims, evalDim } from "./flops.ts";
import { sharedInputs } from "./inputs.ts";
import { fmt, table } from "./report.ts";

const args = Deno.args;
const size = args[0] === "small" ? "small" : "tiny";
const threads = Number(args[args.indexOf("--threads") + 1] || 1) || 1;
const backendArg = args.includes("--backend") ? args[args.indexOf("--backend") + 1] : "wasm";
if (!isBackendName(backendArg)) throw new RangeError(`--backend: unknown backend ${JSON.stringify(backendArg)}`);
const backend = backendArg;
configureRuntime({ wasmThreads: threads });
const engine = await Engine.create(backend, { threads });
const inputs = await sharedInputs();
const model = await loadModel(size === "tiny" ? inputs.tinyModel : inputs.smallModel);
const lora = createLoraConfig(model.config, { r: 8, targetModules: size === "tiny" ? undefined : ["c_attn"] });
const pg = buildPreferenceGraph(model, lora, { loss: "exo-pref", betaPi: 0.1, betaR: 0.1, eps: 1e-3, temperature: 1 });
const compiled = compileStep({
  graph: pg.graph,
  loss: pg.loss,
  params: pg.params,
  metrics: pg.metrics,
  optimizer: adamw({ weightDecay: 0 }),
  maxGradNorm: 1,
  serialize: { externalDataThreshold: 1 << 20 },
});
const params = new Map<string, Float32Array>();
for (const [k, t] of initLoraAdapter(model.config, lora, new Rng(0)).tensors) params.set(k, t.data as Float32Array);
const runner = await StepRunner.create(engine, compiled, params, { lr: 5e-4 });

// One fixed batch, run a few times: its step time is what the groups are set against.
const batch = (size === "tiny" ? inputs.tinyBatches : inputs.smallBatches)[0];
const padded = padPairs(
  batch.map((p, i) => ({ promptIds: p.prompt, chosenIds: p.chosen, rejectedIds: p.rejected, line: i })),
  { maxLength: model.config.maxPositions },
);
const R = padded.rows, T = padded.length;
const feeds: Record<string, OrtTensor> = {
  [INPUT.inputIds]: engine.tensor(padded.inputIds as BigInt64Array, [R, T]),
  [INPUT.attentionMask]: engine.tensor(padded.attentionMask as BigInt64Array, [R, T]),
  [INPUT.targets]: engine.tensor(padded.targets as BigInt64Array, [R, T]),
  [INPUT.completionMask]: engine.tensor(padded.completionMask as Float32Array, [R, T]),
  [INPUT.refLogps]: engine.tensor(new Float32Array(R), [R]),
};
const reps = size === "tiny" ? 5 : 2;
let stepMs = Infinity;
await runner.run(feeds);
for (let i = 0; i < reps; i++) {
  const t = performance.now();
  await runner.run(feeds);
  stepMs = Math.min(stepMs, performance.now() - t);
}
await runner.release();

// Group the products by bound shapes.
const g = pg.graph;
const bind = bindReshapeDims(g, { rows: R, seq: T });
// The fused head runs on the completion positions only (NonZero-made `positions_*` dims).
const completions = Array.from(padded.completionMask as ArrayLike<number>).reduce((a, b) => a + b, 0);
for (const v of g.values.values()) {
  for (const d of v.shape) if (typeof d === "string" && d.startsWith("positions")) bind[d] = completions;
}
const shapeOf = (name: string) => g.values.get(name)!.shape.map((d) => evalDim(d, bind));
const groups = new Map<string, { node: Node; a: number[]; b: number[]; count: number; flops: number }>();
for (const n of g.nodes) {
  if (n.op !== "MatMul" && n.op !== "Gemm") continue;
  const a = shapeOf(n.inputs[0]), b = shapeOf(n.inputs[1]);
  const out = shapeOf(n.outputs[0]);
  const k = n.op === "Gemm" ? (n.attributes.transA?.value === 1 ? a[0] : a[1]) : a[a.length - 1];
  const flops = 2 * out.reduce((p, d) => p * d, 1) * k;
  const key = `${n.op} [${a}] x ${isConst(n.inputs[1]) ? "W" : ""}[${b}]${n.attributes.transA?.value ? " tA" : ""}${
    n.attributes.transB?.value ? " tB" : ""
  }`;
  const e = groups.get(key);
  if (e) {
    e.count++;
    e.flops += flops;
  } else groups.set(key, { node: n, a, b, count: 1, flops });
}

/** True when a value is a weight: an initializer, or a Transpose / Reshape of one (ORT folds those). */
function isConst(name: string): boolean {
  if (g.initializers.has(name)) return true;
  const producer = g.nodes.find((n) => n.outputs.includes(name));
  return !!producer && (producer.op === "Transpose" || producer.op === "Reshape") && isConst(producer.inputs[0]);
}

const rng = new Rng(5);
const rows: { key: string; count: number; ms: number; total: number; gflops: number; flops: number }[] = [];
for (const [key, e] of groups) {
  const sg = new Graph("one");
  const randData = (shape: number[]) =>
    Float32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => rng.next() - 0.5);
  const constB = isConst(e.node.inputs[1]);
  const a = sg.input("a", "float32", e.a);
  const b = constB
    ? sg.initializer("b", { dtype: "float32", shape: e.b, data: randData(e.b) })
    : sg.input("b", "float32", e.b);
  const outShape = g.values.get(e.node.outputs[0])!.shape.map((d) => evalDim(d, bind));
  const [y] = sg.addNode(e.node.op, [a, b], [{ dtype: "float32", shape: outShape }], e.node.attributes);
  sg.output(y, "y");
  const s = await engine.createSession(serializeModel(sg, { externalDataThreshold: 1 << 20 }));
  const f: Record<string, OrtTensor> = { a: engine.tensor(randData(e.a), e.a) };
  if (!constB) f.b = engine.tensor(randData(e.b), e.b);
  await s.run(f);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await s.run(f);
    best = Math.min(best, performance.now() - t);
  }
  await s.release();
  rows.push({
    key,
    count: e.count,
    ms: best,
    total: best * e.count,
    gflops: e.flops / e.count / best / 1e6,
    flops: e.flops,
  });
}
rows.sort((x, y) => y.total - x.total);
const mm = rows.reduce((s, r) => s + r.total, 0);
const flops = rows.reduce((s, r) => s + r.flops, 0);
console.log(
  `train-${size} on ${backend}/${threads}t, batch [${R}, ${T}]: step ${stepMs.toFixed(1)} ms (best of ${reps})`,
);
console.log(
  `products: ${rows.reduce((s, r) => s + r.count, 0)} in ${rows.length} shapes, ${(flops / 1e9).toFixed(2)} GFLOP, ` +
    `${mm.toFixed(1)} ms when timed alone (${((100 * mm) / stepMs).toFixed(0)}% of the step); ` +
    `everything else ${(stepMs - mm).toFixed(1)} ms (${((100 * (stepMs - mm)) / stepMs).toFixed(0)}%)`,
);
console.log(table(
  ["product", "count", "ms each", "ms total", "% of step", "GFLOP/s"],
  rows.slice(0, 14).map((
    r,
  ) => [r.key, String(r.count), fmt(r.ms), fmt(r.total), fmt((100 * r.total) / stepMs), fmt(r.gflops)]),
));
Deno.exit(0);
