/**
 * Issue #17, "Show" 2: contract tests of the emitted artifacts. Each part of the contract ORT's
 * training runtime relies on without checking — checkpoint version, parameter order of the eval
 * model, accumulator wiring — is asserted on the emitted files (exo and python layouts), and then
 * broken one at a time (protobuf surgery on the emitted bytes) to show that `checkArtifacts`
 * catches it and what ORT 1.19.2 does without the check: it refuses a wrong version, but computes
 * silently with the wrong tensors for a misordered eval model, trains a parameter whose
 * accumulator is missing on zero gradients, and piles gradients up across updates when the
 * accumulator has no reset flag.
 */

import assert from "node:assert/strict";
import {
  ARTIFACT_FILES,
  checkArtifacts,
  CHECKPOINT_VERSION,
  OrtTrainingSession,
  readCheckpoint,
  writeCheckpoint,
} from "../../src/ort_training/mod.ts";
import { accumulatedName, bufferName, gradName, LAZY_RESET } from "../../src/ort_training/names.ts";
import { readModel } from "../../src/ort_training/onnx_read.ts";
import { editGraph, encodeNode, fixtureArtifacts, fixtureBatch, nodeOf, valueName } from "./_support.ts";

const FLOAT = 1, BOOL = 9;

for (const layout of ["exo", "python"] as const) {
  Deno.test(`emitted artifacts (${layout} layout): checkpoint version, eval parameter order, accumulator wiring`, async () => {
    const a = await fixtureArtifacts("tiny-gpt2", layout);
    // Checkpoint: FlatBuffer identifier ODTC at bytes 4..8, version 2, parameters in training-input order.
    assert.equal(new TextDecoder().decode(a.bytes.checkpoint.subarray(4, 8)), "ODTC");
    const ckpt = readCheckpoint(a.bytes.checkpoint);
    assert.equal(ckpt.version, CHECKPOINT_VERSION);
    assert.equal(CHECKPOINT_VERSION, 2);
    assert.deepEqual(ckpt.trainable.map((t) => t.name), a.params.map((p) => p.name));
    assert.equal(ckpt.frozen.length > 0, layout === "python", "python layout keeps frozen weights in the checkpoint");
    if (layout === "python") {
      assert.ok(a.params.every((p) => p.name.includes(".lora_A.default.") || p.name.includes(".lora_B.default.")));
    }

    const training = readModel(a.bytes.trainingModel);
    const inputs = new Map(training.inputs.map((v) => [v.name, v]));
    const outputs = new Set(training.outputs.map((v) => v.name));
    assert.equal(training.opsets["com.microsoft"], 1);
    assert.deepEqual(inputs.get(LAZY_RESET), { name: LAZY_RESET, kind: "tensor", elemType: BOOL, shape: [1] });
    for (const p of a.params) {
      assert.deepEqual(inputs.get(p.name)?.shape, p.shape, `${p.name} is a graph input of its shape`);
      assert.ok(!training.initializers.has(p.name), `${p.name} is not an initializer`);
      assert.deepEqual(inputs.get(bufferName(p.name)), {
        name: bufferName(p.name),
        kind: "tensor",
        elemType: FLOAT,
        shape: p.shape,
      });
      const acc = training.nodes.filter((n) =>
        n.opType === "InPlaceAccumulatorV2" && n.inputs[0] === bufferName(p.name)
      );
      assert.equal(acc.length, 1, `one accumulator writes ${bufferName(p.name)}`);
      assert.equal(acc[0].domain, "com.microsoft");
      assert.deepEqual(acc[0].inputs, [bufferName(p.name), gradName(p.name), LAZY_RESET]);
      assert.deepEqual(acc[0].outputs, [accumulatedName(p.name)]);
      assert.ok(outputs.has(accumulatedName(p.name)), `${accumulatedName(p.name)} is a graph output`);
      assert.ok(training.nodes.some((n) => n.outputs.includes(gradName(p.name))), `${gradName(p.name)} is computed`);
    }
    assert.equal(training.outputs[0].name, "loss", "the loss is the first output");

    // Eval model: the parameters in the training model's order, no gradient inputs.
    const evalModel = readModel(a.bytes.evalModel);
    const isParam = (n: string) => ckpt.trainable.some((t) => t.name === n) || ckpt.frozen.some((t) => t.name === n);
    assert.deepEqual(
      evalModel.inputs.map((v) => v.name).filter(isParam),
      training.inputs.map((v) => v.name).filter(isParam),
    );
    assert.ok(!evalModel.inputs.some((v) => v.name.includes("_grad") || v.name === LAZY_RESET));
    assert.deepEqual(evalModel.outputs.map((v) => v.name), a.userOutputs);

    // Optimizer model: the runtime's inputs, one AdamWOptimizer.
    const opt = readModel(a.bytes.optimizerModel);
    assert.deepEqual(opt.inputs.map((v) => v.name), [
      "learning_rate",
      "step",
      "params",
      "gradients",
      "first_order_moments",
      "second_order_moments",
    ]);
    assert.deepEqual(opt.inputs.slice(2).map((v) => v.kind), ["sequence", "sequence", "sequence", "sequence"]);
    assert.deepEqual(opt.nodes.filter((n) => n.domain === "com.microsoft").map((n) => n.opType), ["AdamWOptimizer"]);

    // And the checker agrees.
    const info = checkArtifacts(a.bytes, "emitted");
    assert.deepEqual(info.params.map((p) => p.key), a.params.map((p) => p.key));
    assert.equal(info.optimizer?.kind, "adamw");
  });
}

Deno.test("ORT 1.19.2 loads the emitted set: eval loss equals the train loss, the optimizer moves every parameter", async () => {
  const a = await fixtureArtifacts("tiny-gpt2", "exo", "sgd");
  const s = await OrtTrainingSession.create({
    checkpointState: a.bytes.checkpoint,
    trainModel: a.bytes.trainingModel,
    evalModel: a.bytes.evalModel,
    optimizerModel: a.bytes.optimizerModel,
  });
  try {
    const feeds = await fixtureBatch();
    const before = await s.trainableParameters();
    const ev = await s.evalStep(feeds);
    await s.lazyResetGrad();
    const tr = await s.trainStep(feeds);
    assert.deepEqual(s.outputNames, a.userOutputs);
    for (const name of a.userOutputs) {
      assert.equal((ev[name].data as Float32Array)[0], (tr[name].data as Float32Array)[0], `${name}: eval == train`);
    }
    await s.optimizerStep();
    const after = await s.trainableParameters();
    let at = 0;
    for (const p of a.params) {
      const n = p.shape.reduce((x, y) => x * y, 1);
      let moved = false;
      for (let i = at; i < at + n; i++) moved ||= after[i] !== before[i];
      assert.ok(moved, `${p.name} changed`);
      at += n;
    }
  } finally {
    await s.release();
  }
});

Deno.test("a wrong checkpoint version is caught by readCheckpoint, and ORT refuses it", async () => {
  const a = await fixtureArtifacts("tiny-gpt2");
  const ckpt = readCheckpoint(a.bytes.checkpoint);
  const bad = writeCheckpoint({ ...ckpt, version: 3 });
  assert.throws(() => readCheckpoint(bad, "ckpt"), /ckpt: field "version" is 3; ORT 1\.17-1\.19 read version 2 only/);
  assert.throws(() => checkArtifacts({ ...a.bytes, checkpoint: bad }, "dir"), /dir\/checkpoint: field "version" is 3/);
  await assert.rejects(
    OrtTrainingSession.create({ checkpointState: bad, trainModel: a.bytes.trainingModel }),
    /Checkpoint version 3 is not supported/,
  );
});

Deno.test("a misordered eval model is caught; ORT would evaluate with swapped tensors", async () => {
  const a = await fixtureArtifacts("tiny-gpt2");
  // Two parameters of the same shape, so ORT accepts the swap and computes with the wrong tensors.
  const x = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight";
  const y = "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight";
  const swapped = editGraph(a.bytes.evalModel, (fields) => {
    const ix = fields.findIndex((f) => f.field === 11 && valueName(f) === x);
    const iy = fields.findIndex((f) => f.field === 11 && valueName(f) === y);
    assert.ok(ix >= 0 && iy >= 0);
    const out = [...fields];
    [out[ix], out[iy]] = [out[iy], out[ix]];
    return out;
  });
  assert.throws(
    () => checkArtifacts({ ...a.bytes, evalModel: swapped }, "dir"),
    new RegExp(
      `dir/${ARTIFACT_FILES.evalModel}: parameter ${
        y.replaceAll(".", "\\.")
      } is input \\d+ of the eval model's parameters, but the training model has ${x.replaceAll(".", "\\.")} there`,
    ),
  );
  const s = await OrtTrainingSession.create({
    checkpointState: a.bytes.checkpoint,
    trainModel: a.bytes.trainingModel,
    evalModel: swapped,
  });
  try {
    const feeds = await fixtureBatch();
    const ev = (await s.evalStep(feeds)).loss.data as Float32Array;
    const tr = (await s.trainStep(feeds)).loss.data as Float32Array;
    assert.notEqual(ev[0], tr[0], "ORT evaluates the swapped model without complaint, and gets another loss");
  } finally {
    await s.release();
  }
});

Deno.test("a missing accumulator or reset flag is caught; ORT would train on zero or piled-up gradients", async () => {
  const a = await fixtureArtifacts("tiny-gpt2", "exo", "sgd");
  const p = a.params[3].name;
  const isAccOf = (f: Parameters<typeof nodeOf>[0]) =>
    f.field === 1 && nodeOf(f).opType === "InPlaceAccumulatorV2" && nodeOf(f).inputs[0] === bufferName(p);
  // The accumulator node and its flag output removed: the buffer is still an input, nothing writes it.
  const noAccumulator = editGraph(
    a.bytes.trainingModel,
    (fields) => fields.filter((f) => !isAccOf(f) && !(f.field === 12 && valueName(f) === accumulatedName(p))),
  );
  assert.throws(
    () => checkArtifacts({ ...a.bytes, trainingModel: noAccumulator }, "dir"),
    new RegExp(
      `dir/training_model\\.onnx: no InPlaceAccumulatorV2 writes ${
        bufferName(p).replaceAll(".", "\\.")
      }: .* would train on zero gradients`,
    ),
  );
  // The accumulator without its (optional) reset flag: it always adds.
  const noReset = editGraph(
    a.bytes.trainingModel,
    (fields) => fields.map((f) => isAccOf(f) ? encodeNode({ ...nodeOf(f), inputs: nodeOf(f).inputs.slice(0, 2) }) : f),
  );
  assert.throws(
    () => checkArtifacts({ ...a.bytes, trainingModel: noReset }, "dir"),
    /the accumulator of .* takes "" as its reset flag, not lazy_reset_grad/,
  );
  const noFlagInput = editGraph(
    a.bytes.trainingModel,
    (fields) => fields.filter((f) => !(f.field === 11 && valueName(f) === LAZY_RESET)),
  );
  assert.throws(
    () => checkArtifacts({ ...a.bytes, trainingModel: noFlagInput }, "dir"),
    /input lazy_reset_grad is missing/,
  );

  // What ORT does with them, silently. Without the accumulator p does not move at all, every other
  // parameter does as it should. Without the reset flag the first update is right (the buffer
  // starts at zero) and the second adds p's first gradient again: after it only p is wrong.
  const good = await twoUpdates(a.bytes.trainingModel, a);
  const none = await twoUpdates(noAccumulator, a);
  assert.deepEqual(differs(a, good.first, none.first), [p], "no accumulator: only p is wrong after one update");
  assert.deepEqual(differs(a, initial(a), none.first), a.params.map((q) => q.name).filter((q) => q !== p));
  const piled = await twoUpdates(noReset, a);
  assert.deepEqual(differs(a, good.first, piled.first), [], "no reset: the first update is right");
  assert.deepEqual(differs(a, good.second, piled.second), [p], "no reset: after the second, only p is wrong");
});

/** Two train + optimizer steps on the fixture batch; the trainable parameters after each. */
async function twoUpdates(trainingModel: Uint8Array, a: Awaited<ReturnType<typeof fixtureArtifacts>>) {
  const s = await OrtTrainingSession.create({
    checkpointState: a.bytes.checkpoint,
    trainModel: trainingModel,
    optimizerModel: a.bytes.optimizerModel,
  });
  try {
    const feeds = await fixtureBatch();
    const after: Float32Array[] = [];
    for (let i = 0; i < 2; i++) {
      await s.lazyResetGrad();
      await s.trainStep(feeds);
      await s.optimizerStep();
      after.push(await s.trainableParameters());
    }
    return { first: after[0], second: after[1] };
  } finally {
    await s.release();
  }
}

/** The checkpoint's trainable parameters, flat, in training-input order. */
function initial(a: Awaited<ReturnType<typeof fixtureArtifacts>>): Float32Array {
  const ts = readCheckpoint(a.bytes.checkpoint).trainable;
  const out = new Float32Array(ts.reduce((n, t) => n + t.data.length, 0));
  let at = 0;
  for (const t of ts) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}

/** Names of the parameters whose values differ between two flat parameter vectors. */
function differs(a: Awaited<ReturnType<typeof fixtureArtifacts>>, x: Float32Array, y: Float32Array): string[] {
  const out: string[] = [];
  let at = 0;
  for (const p of a.params) {
    const n = p.shape.reduce((u, v) => u * v, 1);
    let d = false;
    for (let i = at; i < at + n; i++) d ||= x[i] !== y[i];
    if (d) out.push(p.name);
    at += n;
  }
  return out;
}
