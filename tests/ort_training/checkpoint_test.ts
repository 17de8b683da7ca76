/**
 * The checkpoint FlatBuffer: what we write reads back field for field (parameters, frozen tensors,
 * optimizer group, property bag), ORT 1.19.2 loads it and hands the parameters back unchanged, and
 * a broken file fails with a message naming the file and field.
 */

import assert from "node:assert/strict";
import { Builder } from "flatbuffers";
import {
  CheckpointError,
  type CheckpointState,
  OrtTrainingSession,
  readCheckpoint,
  writeCheckpoint,
} from "../../src/ort_training/mod.ts";
import { fixtureArtifacts } from "./_support.ts";

const tensor = (name: string, dims: number[], f: (i: number) => number) => ({
  name,
  dims,
  data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => f(i)),
});

Deno.test("a checkpoint reads back as written: parameters, frozen tensors, optimizer group, properties", () => {
  const c: CheckpointState = {
    version: 2,
    trainable: [tensor("a", [2, 3], (i) => i / 7), tensor("b", [4], (i) => -i)],
    frozen: [tensor("w", [3, 2], (i) => 1 + i)],
    optimizer: {
      name: "group0",
      step: 17,
      initialLearningRate: 1e-3,
      states: [
        { param: "a", momentums: [tensor("momentum0", [2, 3], (i) => i), tensor("momentum1", [2, 3], (i) => i * i)] },
        { param: "b", momentums: [tensor("momentum0", [4], () => 0.5), tensor("momentum1", [4], () => 0.25)] },
      ],
    },
    properties: { ints: { epoch: 3n }, floats: { best: 0.5 }, strings: { note: "héllo" } },
  };
  const back = readCheckpoint(writeCheckpoint(c));
  assert.equal(back.version, 2);
  assert.equal(back.isNominalState, false);
  assert.deepEqual(back.trainable, c.trainable);
  assert.deepEqual(back.frozen, c.frozen);
  assert.deepEqual(back.optimizer, { ...c.optimizer, initialLearningRate: Math.fround(1e-3) });
  assert.deepEqual(back.properties, c.properties);
});

Deno.test("ORT 1.19.2 loads our checkpoint: the parameters it holds are the ones written", async () => {
  const a = await fixtureArtifacts("tiny-llama");
  const written = readCheckpoint(a.bytes.checkpoint).trainable;
  const s = await OrtTrainingSession.create({ checkpointState: a.bytes.checkpoint, trainModel: a.bytes.trainingModel });
  try {
    const flat = await s.trainableParameters();
    assert.equal(flat.length, written.reduce((n, t) => n + t.data.length, 0));
    let at = 0;
    for (const t of written) {
      assert.deepEqual(flat.subarray(at, at + t.data.length), t.data, t.name);
      at += t.data.length;
    }
    // loadTrainableParameters round-trips too.
    const changed = flat.map((x, i) => x + i * 1e-3);
    await s.loadTrainableParameters(changed);
    assert.deepEqual(await s.trainableParameters(), changed);
  } finally {
    await s.release();
  }
});

Deno.test("a broken checkpoint fails naming the file and the field", () => {
  assert.throws(() => readCheckpoint(new Uint8Array(4), "x/checkpoint"), /x\/checkpoint: too short/);
  const good = writeCheckpoint({ version: 2, trainable: [tensor("a", [2], (i) => i)], frozen: [] });
  const wrongId = good.slice();
  wrongId.set(new TextEncoder().encode("ORTM"), 4);
  assert.throws(
    () => readCheckpoint(wrongId, "x/checkpoint"),
    /x\/checkpoint: file identifier "ORTM", expected "ODTC"/,
  );
  assert.throws(() => readCheckpoint(good.subarray(0, 20), "x/checkpoint"), CheckpointError);

  // A checkpoint without module_state, and one whose module_state lacks frozen_params: ORT needs both.
  const bare = (withModuleState: boolean) => {
    const b = new Builder(64);
    let ms = 0;
    if (withModuleState) {
      b.startObject(4);
      ms = b.endObject();
    }
    b.startObject(4);
    b.addFieldInt32(0, 2, null);
    if (ms) b.addFieldOffset(1, ms, 0);
    b.finish(b.endObject(), "ODTC");
    return b.asUint8Array().slice();
  };
  assert.throws(() => readCheckpoint(bare(false), "c"), /c: field "module_state" is missing/);
  assert.throws(() => readCheckpoint(bare(true), "c"), /c: field "module_state\.frozen_params" is missing/);
  assert.throws(
    () => writeCheckpoint({ version: 2, trainable: [{ name: "a", dims: [3], data: new Float32Array(2) }], frozen: [] }),
    /Checkpoint tensor a: 2 values for dims \[3\]/,
  );
});
