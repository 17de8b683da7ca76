/**
 * The tie convention of Max/Min and ReduceMax/ReduceMin (src/autodiff/rules/max.ts, reduce_max.ts):
 * operands or elements equal to the result share its gradient equally, as PyTorch's
 * `torch.maximum` (half each) and `amax` (evenly) do. Random inputs never tie, so the
 * finite-difference rule tests never reach this branch; here the ties are built in.
 *
 * Each case is checked on the rule's documented values (exact: shares of 1/2 and 1/3 of a power-of-2
 * cotangent are exact in float32 too), and against ORT's forward: the output must equal the tied
 * value itself, since the rule finds the selected entries by `x == y`. If a backend's forward
 * returned anything else (a rounded or sign-flipped zero that compares unequal), no entry would be
 * selected and the gradient would be lost (0/0), which the "shares sum to the cotangent" check
 * catches. Runs on wasm in float64 and float32 and on WebGPU in float32.
 */

import assert from "node:assert/strict";
import { backward } from "../../src/autodiff/mod.ts";
import type { DType } from "../../src/onnx/dtype.ts";
import { Graph, type Value } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import type { BackendName } from "../../src/runtime/ort.ts";
import { Engine, readTensor } from "../../src/runtime/session.ts";
import { webgpuOrSkip } from "../train/_trainer_support.ts";

/** A tie case: inputs, the op, and the expected forward output and input gradients for dy. */
interface TieCase {
  name: string;
  inputs: { dims: number[]; data: number[] }[];
  build: (xs: Value[]) => Value;
  /** The cotangent dy, shaped like y. */
  dy: number[];
  y: number[];
  grads: number[][];
}

/** Max/Min with n operands, through addNode (the builders take two). */
function variadic(name: "Max" | "Min", xs: Value[]): Value {
  const shape = op.broadcastShapes(name, ...xs.map((x) => x.shape));
  return xs[0].graph.addNode(name, xs, [{ dtype: xs[0].dtype, shape }])[0];
}

function reduceMin(x: Value, axes: number[], keep: boolean): Value {
  return x.graph.addNode("ReduceMin", [x, x.graph.int64s(axes)], [{
    dtype: x.dtype,
    shape: op.reduceMax(x, axes, keep).shape,
  }], { keepdims: { type: "int", value: keep ? 1 : 0 } })[0];
}

const CASES: TieCase[] = [
  {
    // Entries 0 and 2 tie (each operand gets half), 1 and 3 do not.
    name: "Max of two, some entries tied",
    inputs: [{ dims: [4], data: [1, 5, -2, 0] }, { dims: [4], data: [1, 3, -2, 4] }],
    build: ([a, b]) => op.max(a, b),
    dy: [2, 4, 8, 16],
    y: [1, 5, -2, 4],
    grads: [[1, 4, 4, 0], [1, 0, 4, 16]],
  },
  {
    // All three tie at entry 0 (a third each), two of three at entry 1, none at entry 2.
    name: "Max of three",
    inputs: [{ dims: [3], data: [7, 2, 0] }, { dims: [3], data: [7, 2, 1] }, { dims: [3], data: [7, -1, 3] }],
    build: (xs) => variadic("Max", xs),
    dy: [3, 2, 1],
    y: [7, 2, 3],
    grads: [[1, 1, 0], [1, 1, 0], [1, 0, 1]],
  },
  {
    // A broadcast scalar tying with two entries: it collects half of each, plus all of a strict win.
    name: "Max with a broadcast scalar",
    inputs: [{ dims: [2, 2], data: [1, 0.5, 1, 3] }, { dims: [], data: [1] }],
    build: ([x, s]) => op.max(x, s),
    dy: [2, 4, 8, 16],
    y: [1, 1, 1, 3],
    grads: [[1, 0, 4, 16], [1 + 4 + 4]],
  },
  {
    // +0 and −0 are equal, so they tie whichever of them the forward returns.
    name: "Max of +0 and -0",
    inputs: [{ dims: [2], data: [0, -0] }, { dims: [2], data: [-0, 0] }],
    build: ([a, b]) => op.max(a, b),
    dy: [2, 4],
    y: [0, 0],
    grads: [[1, 2], [1, 2]],
  },
  {
    name: "Min of two, tied",
    inputs: [{ dims: [3], data: [-1, 2, 5] }, { dims: [3], data: [-1, 2, 4] }],
    build: ([a, b]) => op.min(a, b),
    dy: [4, 2, 1],
    y: [-1, 2, 4],
    grads: [[2, 1, 0], [2, 1, 1]],
  },
  {
    // Row 0: two maxima share; row 1: three; row 2: ±0 tie; row 3: one maximum.
    name: "ReduceMax over the last axis",
    inputs: [{ dims: [4, 3], data: [1, 3, 3, 2, 2, 2, 0, -0, -1, 5, 1, 4] }],
    build: ([x]) => op.reduceMax(x, [1], false),
    dy: [2, 3, 4, 8],
    y: [3, 2, 0, 5],
    grads: [[0, 1, 1, 1, 1, 1, 2, 2, 0, 8, 0, 0]],
  },
  {
    // Over both axes with keepdims: four-way tie.
    name: "ReduceMax over all axes, keepdims",
    inputs: [{ dims: [2, 3], data: [4, 1, 4, 4, -2, 4] }],
    build: ([x]) => op.reduceMax(x, [0, 1], true),
    dy: [8],
    y: [4],
    grads: [[2, 0, 2, 2, 0, 2]],
  },
  {
    name: "ReduceMin over the first axis",
    inputs: [{ dims: [2, 3], data: [1, -2, 0, 1, 5, -0] }],
    build: ([x]) => reduceMin(x, [0], false),
    dy: [2, 4, 8],
    y: [1, -2, 0],
    grads: [[1, 4, 4, 1, 0, 4]],
  },
];

async function runCases(backend: BackendName, dtype: DType): Promise<void> {
  const engine = await Engine.create(backend);
  const g = new Graph(`ties_${dtype}`);
  const outs = CASES.map((c, ci) => {
    const xs = c.inputs.map((inp, i) => g.input(`c${ci}_x${i}`, dtype, inp.dims));
    const y = c.build(xs);
    const dy = g.input(`c${ci}_dy`, dtype, y.shape);
    g.output(y, `c${ci}_y`);
    backward(y, xs, { seed: dy }).forEach((d, i) => g.output(d, `c${ci}_g${i}`));
    return y;
  });
  const session = await engine.createSession(serializeModel(g));
  const arr = (x: number[]) => (dtype === "float64" ? Float64Array.from(x) : Float32Array.from(x));
  const feeds: Record<string, ReturnType<typeof engine.tensor>> = {};
  CASES.forEach((c, ci) => {
    c.inputs.forEach((inp, i) => (feeds[`c${ci}_x${i}`] = engine.tensor(arr(inp.data), inp.dims)));
    feeds[`c${ci}_dy`] = engine.tensor(arr(c.dy), outs[ci].shape as number[]);
  });
  const r = await session.run(feeds);
  try {
    for (const [ci, c] of CASES.entries()) {
      const where = `${c.name} (${backend} ${dtype})`;
      const y = Array.from(await readTensor(r[`c${ci}_y`]) as Float32Array);
      assert.deepEqual(y.map((v) => v + 0), c.y, `${where}: forward`); // + 0 folds −0 into 0
      for (const [yi, v] of y.entries()) {
        const selected = c.inputs.some((inp) => inp.data.includes(v) || (inp.dims.length === 0 && inp.data[0] === v));
        assert.ok(selected, `${where}: y[${yi}] = ${v} equals no input entry: the rule would select nothing`);
      }
      const grads = [];
      for (let i = 0; i < c.inputs.length; i++) {
        grads.push(Array.from(await readTensor(r[`c${ci}_g${i}`]) as Float32Array));
      }
      assert.deepEqual(grads, c.grads, `${where}: gradients (ties share equally)`);
      // Nothing lost or created: the shares add up to the cotangent (exactly: they are powers of 2 here).
      const total = grads.flat().reduce((s, v) => s + v, 0);
      assert.equal(total, c.dy.reduce((s, v) => s + v, 0), `${where}: Σ dx = Σ dy`);
    }
  } finally {
    await session.release();
  }
}

Deno.test("ties of Max/Min and ReduceMax/ReduceMin share the gradient equally (wasm, float64 and float32)", async () => {
  await runCases("wasm", "float64");
  await runCases("wasm", "float32");
});

Deno.test({
  name: "ties of Max/Min and ReduceMax/ReduceMin share the gradient equally (WebGPU, float32)",
  ignore: !(await webgpuOrSkip()),
  fn: () => runCases("webgpu", "float32"),
});
