/**
 * The fused training step end to end: an MLP (wasm and WebGPU, with GPU residency checked) and a
 * one-layer transformer (wasm; a few steps on WebGPU) reduce their loss; accumulation matches a
 * fused step on the concatenated batch; optimizer state round-trips through export/import.
 */

import assert from "node:assert/strict";
import { resolveBackend } from "../../src/runtime/backend.ts";
import { Engine } from "../../src/runtime/session.ts";
import { Rng } from "../../src/util/rng.ts";
import { adamw, sgd } from "../../src/optim/mod.ts";
import { compileStep } from "../../src/train/step.ts";
import { type Batch, StepRunner } from "../../src/train/step_runner.ts";
import { mlp, mlpBatch, transformer } from "./_models.ts";

const IN = 8, HID = 32, CLS = 4;

function mlpBatches(engine: Engine, count: number, n: number, seed = 3): Batch[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const b = mlpBatch(rng, n, IN, CLS);
    return { x: engine.tensor(b.x, [n, IN]), y: engine.tensor(b.y, [n]) };
  });
}

async function trainMlp(engine: Engine, steps: number) {
  const m = mlp(IN, HID, CLS);
  const compiled = compileStep({
    graph: m.graph,
    loss: m.loss,
    params: m.params,
    metrics: m.metrics,
    optimizer: adamw({ weightDecay: 0.01 }),
    maxGradNorm: 1,
  });
  const runner = await StepRunner.create(engine, compiled, m.init, { lr: 1e-2 });
  const losses: number[] = [], gpuCounts: number[] = [];
  for (const batch of mlpBatches(engine, steps, 32)) {
    const r = await runner.run(batch);
    losses.push(r.loss);
    gpuCounts.push(runner.pool.gpuCount());
  }
  return { runner, losses, gpuCounts };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

Deno.test("an MLP trained by the fused step reduces its loss (wasm)", async () => {
  const engine = await Engine.create("wasm");
  const { runner, losses } = await trainMlp(engine, 40);
  assert.ok(mean(losses.slice(-5)) < 0.6 * mean(losses.slice(0, 5)), `losses ${losses.map((l) => l.toFixed(3))}`);
  assert.equal(runner.step, 40);
  await runner.release();
});

Deno.test({
  name: "on WebGPU the MLP trains with params and moments kept on the GPU, matching wasm",
  ignore: !(await webgpuOrSkip()),
  fn: async () => {
    const steps = 15;
    const gpu = await Engine.create("webgpu");
    const { runner, losses, gpuCounts } = await trainMlp(gpu, steps);
    // 4 params x (param, m, v) = 12 tensors, all on the GPU from the first step on, none leaked.
    assert.deepEqual(new Set(gpuCounts), new Set([12]));
    for (const name of ["w1", "b1", "w2", "b2", "w1::m", "b2::v"]) {
      assert.equal(runner.pool.get(name).location, "gpu-buffer", name);
    }
    const cpu = await Engine.create("wasm");
    const ref = await trainMlp(cpu, steps);
    losses.forEach((l, i) => assert.ok(Math.abs(l - ref.losses[i]) < 1e-4, `step ${i}: ${l} vs ${ref.losses[i]}`));
    const [pg, pc] = [await runner.getParams(), await ref.runner.getParams()];
    assert.deepEqual([...pg.keys()].sort(), ["b1", "b2", "w1", "w2"]);
    for (const [k, v] of pg) v.forEach((x, i) => assert.ok(Math.abs(x - pc.get(k)![i]) < 1e-4, `${k}[${i}]`));
    // Downloading moved the params to the CPU; the next step puts them back on the GPU.
    await runner.run(mlpBatches(gpu, 1, 32, 7)[0]);
    assert.equal(runner.pool.get("w1").location, "gpu-buffer");
    assert.equal(runner.pool.gpuCount(), 12);
    await runner.release();
    await ref.runner.release();
  },
});

Deno.test("gradient accumulation over 2 micro-batches equals one fused step on both", async () => {
  const engine = await Engine.create("wasm");
  const rng = new Rng(11);
  const data = Array.from({ length: 3 }, () => mlpBatch(rng, 16, IN, CLS));
  const run = async (accumulate: boolean) => {
    const m = mlp(IN, HID, CLS);
    const compiled = compileStep({
      graph: m.graph,
      loss: m.loss,
      params: m.params,
      optimizer: sgd({ momentum: 0.9 }),
      maxGradNorm: 0.5,
      accumulate,
    });
    const runner = await StepRunner.create(engine, compiled, m.init, { lr: 0.1 });
    const norms: number[] = [];
    for (const d of data) {
      if (accumulate) {
        const halves = [0, 8].map((o) => ({
          x: engine.tensor(d.x.slice(o * IN, (o + 8) * IN), [8, IN]),
          y: engine.tensor(d.y.slice(o, o + 8), [8]),
        }));
        norms.push((await runner.run(halves)).gradNorm);
      } else {
        norms.push((await runner.run({ x: engine.tensor(d.x, [16, IN]), y: engine.tensor(d.y, [16]) })).gradNorm);
      }
    }
    const params = await runner.getParams();
    await runner.release();
    return { params, norms };
  };
  const fused = await run(false), acc = await run(true);
  assert.equal(fused.norms.length, 3);
  assert.deepEqual([...acc.params.keys()].sort(), [...fused.params.keys()].sort());
  assert.ok(fused.params.size > 0);
  fused.norms.forEach((n, i) => assert.ok(Math.abs(n - acc.norms[i]) < 1e-5, `norm ${i}: ${n} vs ${acc.norms[i]}`));
  assert.ok(fused.norms[0] > 0.5, "clipping must be active for this test to mean something");
  for (const [k, v] of fused.params) {
    v.forEach((x, i) => assert.ok(Math.abs(x - acc.params.get(k)![i]) < 1e-5, `${k}[${i}]`));
  }
});

Deno.test("optimizer state export/import resumes the exact trajectory", async () => {
  const engine = await Engine.create("wasm");
  const batches = mlpBatches(engine, 5, 16, 21);
  const make = async () => {
    const m = mlp(IN, HID, CLS);
    const compiled = compileStep({ graph: m.graph, loss: m.loss, params: m.params, optimizer: adamw() });
    return await StepRunner.create(engine, compiled, m.init, { lr: (k) => 1e-2 / (1 + k) });
  };
  const straight = await make();
  for (const b of batches) await straight.run(b);
  const first = await make();
  for (const b of batches.slice(0, 3)) await first.run(b);
  const params = await first.getParams(), state = await first.exportState();
  assert.equal(state.step, 3);
  assert.deepEqual([...state.slots.keys()].sort(), [
    "b1::m",
    "b1::v",
    "b2::m",
    "b2::v",
    "w1::m",
    "w1::v",
    "w2::m",
    "w2::v",
  ]);
  const resumed = await make();
  resumed.setParams(params);
  resumed.importState(state);
  let last = 0;
  for (const b of batches.slice(3)) last = (await resumed.run(b)).lr;
  assert.equal(last, 1e-2 / 5); // the schedule continues from step 3
  const [a, b] = [await straight.getParams(), await resumed.getParams()];
  for (const [k, v] of a) assert.deepEqual(Array.from(v), Array.from(b.get(k)!), k);
  for (const r of [straight, first, resumed]) await r.release();
});

Deno.test("a one-layer transformer trained by the fused step learns its sequences (wasm)", async () => {
  const engine = await Engine.create("wasm");
  const [V, S, D, B] = [11, 8, 16, 4];
  const m = transformer(V, S, D);
  const compiled = compileStep({ graph: m.graph, loss: m.loss, params: m.params, optimizer: adamw(), maxGradNorm: 1 });
  const runner = await StepRunner.create(engine, compiled, m.init, { lr: 1e-2 });
  // Sequences t, t+k, t+2k, ... mod V: the next token follows from the previous two.
  const rng = new Rng(4);
  const losses: number[] = [];
  for (let step = 0; step < 60; step++) {
    const toks = new BigInt64Array(B * S);
    for (let b = 0; b < B; b++) {
      const [t0, k] = [rng.int(V), 1 + rng.int(2)];
      for (let s = 0; s < S; s++) toks[b * S + s] = BigInt((t0 + k * s) % V);
    }
    losses.push((await runner.run({ tokens: engine.tensor(toks, [B, S]) })).loss);
  }
  assert.ok(losses[0] > 2, `initial loss ${losses[0]} should be near log(11)`);
  assert.ok(mean(losses.slice(-5)) < 0.5 * mean(losses.slice(0, 5)), `losses ${losses.map((l) => l.toFixed(2))}`);
  await runner.release();
});

Deno.test({
  name: "the transformer step runs on WebGPU and matches wasm for a few steps",
  ignore: !(await webgpuOrSkip()),
  fn: async () => {
    const [V, S, D, B] = [11, 8, 16, 2];
    const toks = BigInt64Array.from({ length: B * S }, (_, i) => BigInt((3 * i) % V));
    const losses: number[][] = [];
    for (const be of ["webgpu", "wasm"] as const) {
      const engine = await Engine.create(be);
      const m = transformer(V, S, D);
      const compiled = compileStep({ graph: m.graph, loss: m.loss, params: m.params, optimizer: adamw() });
      const runner = await StepRunner.create(engine, compiled, m.init, { lr: 1e-2 });
      const ls: number[] = [];
      for (let i = 0; i < 3; i++) ls.push((await runner.run({ tokens: engine.tensor(toks, [B, S]) })).loss);
      if (be === "webgpu") assert.equal(runner.pool.get("emb").location, "gpu-buffer");
      losses.push(ls);
      await runner.release();
    }
    losses[0].forEach((l, i) => assert.ok(Math.abs(l - losses[1][i]) < 1e-3, `step ${i}: ${l} vs ${losses[1][i]}`));
    assert.ok(losses[1][2] < losses[1][0]);
  },
});

Deno.test("compileStep rejects what it cannot train", () => {
  const m = mlp(IN, HID, CLS);
  assert.throws(
    () => compileStep({ graph: m.graph, loss: m.loss, params: [], optimizer: adamw() }),
    /no trainable parameters/,
  );
  const x = m.graph.get("x");
  assert.throws(
    () => compileStep({ graph: m.graph, loss: m.loss, params: [m.params[0]], metrics: { bad: x }, optimizer: adamw() }),
    /metric bad must be a scalar/,
  );
});

/** True when WebGPU can be tested; under CI=true a missing adapter fails instead. */
async function webgpuOrSkip(): Promise<boolean> {
  try {
    await resolveBackend("webgpu");
    return true;
  } catch (e) {
    if (Deno.env.get("CI") === "true") throw e;
    console.warn(`Skipping a WebGPU test: ${(e as Error).message}`);
    return false;
  }
}
