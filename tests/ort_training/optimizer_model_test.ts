/**
 * The emitted optimizer model on ORT 1.19.2, on a one-parameter model whose gradient is known
 * exactly (loss = Σ W ⊙ x, so ∂loss/∂W = x): the learning rate of update k is the table's entry k
 * (the runtime's own 1e-3 is ignored; the table's last entry repeats), a checkpoint's step moves
 * the table's position, micro-batch gradients are averaged, clipping and SGD's weight decay follow
 * PyTorch, and AdamW's update matches a float64 reference. The float32 moment mirror (used for our
 * checkpoints) reproduces the runtime's parameters.
 */

import assert from "node:assert/strict";
import { Graph } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { withGradientOutputs } from "../../src/ort_training/adapt.ts";
import { UpdateMirror } from "../../src/ort_training/moments.ts";
import {
  emitOptimizerModel,
  type OptimizerModelSpec,
  OrtTrainingSession,
  writeCheckpoint,
} from "../../src/ort_training/mod.ts";
import { gradName, gradOutputName } from "../../src/ort_training/names.ts";
import { appendGradientAccumulation } from "../../src/ort_training/training_model.ts";

const f = Math.fround;
const SHAPE = [2, 3];
const W0 = [0.5, -1, 2, 0.25, 3, -0.75];

/** A training model with loss = Σ W ⊙ x, plus the gradient output the engine adds. */
function trainingModel(): Uint8Array {
  const g = new Graph("linear");
  const x = g.input("x", "float32", SHAPE);
  const w = g.input("W", "float32", SHAPE);
  const loss = op.reduceSum(op.mul(w, x), [0, 1], false);
  g.output(loss, "loss");
  appendGradientAccumulation(g, loss, [w]);
  const bytes = serializeModel(g).model;
  return withGradientOutputs(bytes, [{ name: "W", shape: SHAPE }], new Map([["W", gradName("W")]]));
}

async function session(spec: Omit<OptimizerModelSpec, "numParams">, step: number | null = null) {
  const optimizer = step === null ? null : {
    name: "group0",
    step,
    initialLearningRate: 0,
    states: [{
      param: "W",
      momentums: ["momentum0", "momentum1"].slice(0, spec.kind === "adamw" ? 2 : 1).map((name) => ({
        name,
        dims: SHAPE,
        data: new Float32Array(6),
      })),
    }],
  };
  return await OrtTrainingSession.create({
    checkpointState: writeCheckpoint({
      version: 2,
      trainable: [{ name: "W", dims: SHAPE, data: Float32Array.from(W0) }],
      frozen: [],
      optimizer,
    }),
    trainModel: trainingModel(),
    optimizerModel: emitOptimizerModel({ ...spec, numParams: 1 }),
  });
}

const feed = (x: number[]) => ({ x: { type: "float32", data: Float32Array.from(x), dims: SHAPE } });
const X1 = [1, 2, -3, 0.5, -0.25, 4];
const X2 = [-2, 0.5, 1, 1, 3, -1];

/** One update over the given micro-batches; returns W after it. */
async function update(s: OrtTrainingSession, xs: number[][]): Promise<Float32Array> {
  await s.lazyResetGrad();
  for (const x of xs) {
    const out = await s.trainStep(feed(x));
    assert.deepEqual(Array.from(out[gradOutputName("W")].data as Float32Array), x.map(f), "the gradient output is x");
  }
  await s.optimizerStep();
  return await s.trainableParameters();
}

Deno.test("SGD: update k uses the table's rate k (then its last), exactly; a checkpoint's step starts the table there", async () => {
  const table = [0.5, 0.25, 0.125];
  const s = await session({ kind: "sgd", lrTable: Float32Array.from(table), maxGradNorm: 0, weightDecay: 0 });
  try {
    let w: Float32Array = Float32Array.from(W0);
    for (const lr of [0.5, 0.25, 0.125, 0.125]) {
      const expected = w.map((v, i) => f(v - f(lr * X1[i])));
      w = await update(s, [X1]);
      assert.deepEqual(w, expected, `rate ${lr}`);
    }
  } finally {
    await s.release();
  }
  const resumed = await session({ kind: "sgd", lrTable: Float32Array.from(table), maxGradNorm: 0, weightDecay: 0 }, 1);
  try {
    const w = await update(resumed, [X1]);
    assert.deepEqual(
      w,
      Float32Array.from(W0).map((v, i) => f(v - f(0.25 * X1[i]))),
      "step 1 in the checkpoint: rate 0.25",
    );
  } finally {
    await resumed.release();
  }
});

Deno.test("SGD: micro-batch gradients are averaged, clipped by global norm, then weight decay added (PyTorch order)", async () => {
  const lr = 0.5, clip = 1, wd = 0.1;
  const s = await session({
    kind: "sgd",
    lrTable: new Float32Array([lr]),
    gradAccum: 2,
    maxGradNorm: clip,
    weightDecay: wd,
  });
  try {
    const w = await update(s, [X1, X2]);
    const mean = X1.map((x, i) => (x + X2[i]) / 2);
    const norm = Math.hypot(...mean);
    const coef = Math.min(1, clip / (norm + 1e-6));
    const expected = W0.map((p, i) => p - lr * (mean[i] * coef + wd * p));
    // float32 graph against a float64 formula, values of size ~3: measured 1.3e-7.
    for (let i = 0; i < 6; i++) assert.ok(Math.abs(w[i] - expected[i]) < 1e-6, `${w[i]} vs ${expected[i]}`);
    assert.ok(coef < 0.5, "the clip was active");
  } finally {
    await s.release();
  }
});

Deno.test("micro-batches that vary per update (an epoch's left-over): update k divides by its own count, exactly", async () => {
  // gradAccum 2 over 3 micro-batches an epoch: updates take 2, 1, 2, 1, ... (the table's last entry repeats).
  const lr = 0.5, micro = [2, 1, 2, 1];
  const s = await session({
    kind: "sgd",
    lrTable: new Float32Array([lr]),
    gradAccum: 2,
    microBatches: micro,
    maxGradNorm: 0,
    weightDecay: 0,
  });
  const mirror = new UpdateMirror([{ name: "W", size: 6 }], { kind: "sgd", gradAccum: 2, maxGradNorm: 0 });
  try {
    let w: Float32Array = Float32Array.from(W0);
    for (const [k, n] of [...micro, 1].entries()) {
      const xs = n === 2 ? [X1, X2] : [X2];
      // ORT sums in float32, then the optimizer model scales by float32(1/n) (1/1 and 1/2 are exact).
      const g = xs[0].map((_, i) => f(f(xs.reduce((a, x) => f(a + x[i]), 0)) * f(1 / n)));
      const expected = w.map((v, i) => f(v - f(lr * g[i])));
      w = await update(s, xs);
      assert.deepEqual(w, expected, `update ${k + 1} of ${n} micro-batches`);
      xs.forEach((x, j) => mirror.add("W", Float32Array.from(x), j === 0));
      for (const _ of xs) mirror.endMicroBatch();
      const norm = mirror.finishUpdate(n);
      assert.ok(Math.abs(norm - Math.hypot(...g)) <= 1e-6 * Math.hypot(...g), `mirror norm at update ${k + 1}`);
    }
  } finally {
    await s.release();
  }
  assert.throws(
    () =>
      emitOptimizerModel({
        kind: "sgd",
        numParams: 1,
        lrTable: new Float32Array([1]),
        gradAccum: 2,
        microBatches: [3],
        maxGradNorm: 0,
        weightDecay: 0,
      }),
    /micro-batches per update must be in 1\.\.2, got 3/,
  );
});

Deno.test("AdamW (adam_mode 0): matches a float64 reference over 3 updates, and the moment mirror reproduces it", async () => {
  const lrs = [0.1, 0.05, 0.02], b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  const spec = { kind: "adamw" as const, lrTable: Float32Array.from(lrs), maxGradNorm: 0, weightDecay: wd };
  const s = await session(spec);
  const mirror = new UpdateMirror([{ name: "W", size: 6 }], { kind: "adamw", gradAccum: 1, maxGradNorm: 0 });
  try {
    const ref = { p: [...W0], m: new Array(6).fill(0), v: new Array(6).fill(0) };
    let mirrored: Float32Array = Float32Array.from(W0);
    for (let t = 1; t <= 3; t++) {
      const x = t % 2 ? X1 : X2;
      const w = await update(s, [x]);
      const lr = lrs[t - 1];
      for (let i = 0; i < 6; i++) {
        ref.p[i] -= ref.p[i] * lr * wd;
        ref.m[i] = b1 * ref.m[i] + (1 - b1) * x[i];
        ref.v[i] = b2 * ref.v[i] + (1 - b2) * x[i] * x[i];
        ref.p[i] -= (lr * ref.m[i]) / ((1 - b1 ** t) * (Math.sqrt(ref.v[i] / (1 - b2 ** t)) + eps));
      }
      // float32 (with ORT's float32 β's) against float64, values of size ~3: measured <= 1.8e-7.
      for (let i = 0; i < 6; i++) assert.ok(Math.abs(w[i] - ref.p[i]) < 1e-6, `t=${t} [${i}]: ${w[i]} vs ${ref.p[i]}`);

      // The mirror's moments, put through ORT's float32 update, give the runtime's parameters.
      mirror.add("W", Float32Array.from(x), true);
      mirror.endMicroBatch();
      mirror.finishUpdate();
      const { m, v } = mirror.moments().get("W")!;
      const bc1 = f(1 - f(f(b1) ** t)), bc2 = f(1 - f(f(b2) ** t));
      mirrored = mirrored.map((p, i) => {
        const decayed = f(p - f(f(p * f(lr)) * f(wd)));
        const denom = f(f(Math.sqrt(f(v[i] / bc2))) + f(eps));
        return f(decayed - f(f(f(lr) * m[i]) / f(bc1 * denom)));
      });
      for (let i = 0; i < 6; i++) {
        assert.ok(
          Math.abs(mirrored[i] - w[i]) <= 2 ** -22 * Math.abs(w[i]),
          `t=${t} [${i}]: mirror ${mirrored[i]} vs ${w[i]}`,
        );
      }
      mirrored = w.slice();
    }
  } finally {
    await s.release();
  }
});
