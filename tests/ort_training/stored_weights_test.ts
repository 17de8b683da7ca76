/**
 * The memory work's graph options in ORT training artifacts. Artifacts of a 16-bit checkpoint: ORT's training API takes model bytes only, so every weight is
 * written into the models (no external-data reference to the safetensors file). The exo layout
 * keeps the weights in their stored type (cast next to each use, as the fused engines read them)
 * and ORT 1.19.2 trains with them as with their float32 upcast; the python layout holds them as
 * float32 graph inputs in the checkpoint, giving the same artifacts as the upcast model. Layer
 * recomputation (what the trainer turns on for large batches) gives the same update in both layouts.
 */

import assert from "node:assert/strict";
import protobuf from "protobufjs/minimal.js";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { type LoadedModel, loadModel } from "../../src/models/load.ts";
import {
  type ArtifactLayout,
  CHECKPOINT_VERSION,
  emitArtifacts,
  emitOptimizerModel,
  emitTrainingModels,
  OrtTrainingSession,
  readCheckpoint,
  writeCheckpoint,
} from "../../src/ort_training/mod.ts";
import { readModel } from "../../src/ort_training/onnx_read.ts";
import { halfModelFiles } from "../models/_helpers.ts";
import { editGraph, fixtureBatch, FX } from "./_support.ts";

/** ONNX TensorProto data types. */
const ONNX_TYPE = { float32: 1, float16: 10, bfloat16: 16 } as const;

const LOSS = { loss: "exo-pref", betaPi: 0.1, betaR: 0.1, eps: 1e-3, temperature: 1 } as const;
const SGD_LR1 = { kind: "sgd", lrTable: new Float32Array([1]), maxGradNorm: 0, weightDecay: 0 } as const;

async function artifacts(model: LoadedModel, layout: ArtifactLayout) {
  const adapter = await readAdapter(`${FX}/tiny-llama/adapter`, localFiles(), model.config);
  return emitArtifacts({
    model,
    lora: adapter.config,
    params: new Map([...adapter.tensors].map(([k, t]) => [k, t.data as Float32Array])),
    loss: LOSS,
    optimizer: SGD_LR1,
    layout,
  });
}

/**
 * Each initializer of a model: its data type and whether its bytes are in the model rather than
 * external data (TensorProto: data_type = 2, name = 8, data_location = 14, EXTERNAL = 1).
 */
function initializers(model: Uint8Array): Map<string, { type: number; inline: boolean }> {
  const out = new Map<string, { type: number; inline: boolean }>();
  editGraph(model, (fields) => {
    for (const f of fields.filter((f) => f.field === 5)) {
      const r = protobuf.Reader.create(f.bytes);
      r.uint32();
      const end = r.uint32() + r.pos;
      let name = "", type = 0, external = false;
      while (r.pos < end) {
        const tag = r.uint32();
        if (tag >>> 3 === 2) type = r.int32();
        else if (tag >>> 3 === 8) name = r.string();
        else if (tag >>> 3 === 14) external = r.int32() === 1;
        else r.skipType(tag & 7);
      }
      out.set(name, { type, inline: !external });
    }
    return fields;
  });
  return out;
}

/** One SGD update at lr 1 on the fixture pairs: the loss and the updated LoRA parameters. */
async function oneUpdate(
  a: { bytes: { checkpoint: Uint8Array; trainingModel: Uint8Array; optimizerModel: Uint8Array } },
): Promise<{ loss: number; params: Float32Array }> {
  const s = await OrtTrainingSession.create({
    checkpointState: a.bytes.checkpoint,
    trainModel: a.bytes.trainingModel,
    optimizerModel: a.bytes.optimizerModel,
  });
  try {
    await s.lazyResetGrad();
    const out = await s.trainStep(await fixtureBatch());
    await s.optimizerStep();
    return { loss: (out.loss.data as Float32Array)[0], params: await s.trainableParameters() };
  } finally {
    await s.release();
  }
}

for (const dtype of ["bfloat16", "float16"] as const) {
  Deno.test(`${dtype} weights, exo layout: stored ${dtype} inside the models; ORT 1.19.2 trains as with the float32 upcast`, async () => {
    const files = await halfModelFiles(dtype);
    const half = await artifacts(await loadModel("m", files), "exo");
    const upcast = await artifacts(await loadModel("m", files, { dtype: "float32" }), "exo");
    for (const model of [half.bytes.trainingModel, half.bytes.evalModel]) {
      const inits = initializers(model);
      const weight = inits.get("model.layers.0.mlp.down_proj.weight");
      assert.deepEqual(weight, { type: ONNX_TYPE[dtype], inline: true }, "a weight in its stored type, in the model");
      assert.ok([...inits.values()].every((t) => t.inline), "no external data: ORT's training API takes bytes only");
    }
    const [x, y] = [await oneUpdate(half), await oneUpdate(upcast)];
    // The casts are exact and the kernels the same, one thread, same order: measured equal, bit for bit.
    assert.equal(x.loss, y.loss);
    assert.deepEqual(x.params, y.params);
  });

  Deno.test(`${dtype} weights, python layout: float32 frozen params in the checkpoint, the upcast model's artifacts`, async () => {
    const files = await halfModelFiles(dtype);
    const half = await artifacts(await loadModel("m", files), "python");
    const upcast = await artifacts(await loadModel("m", files, { dtype: "float32" }), "python");
    const frozen = readCheckpoint(half.bytes.checkpoint).frozen;
    assert.ok(frozen.some((t) => t.name === "model.layers.0.mlp.down_proj.weight"));
    assert.ok(frozen.every((t) => t.data instanceof Float32Array), "the checkpoint holds float32 tensors");
    // Casting the stored weights to float32 is exact, so the emitted sets are the upcast model's.
    assert.deepEqual(half.bytes, upcast.bytes);
  });
}

for (const layout of ["exo", "python"] as const) {
  Deno.test(`${layout} layout: with layers recomputed in the backward pass, ORT 1.19.2 makes the same update`, async () => {
    const model = await loadModel(`${FX}/tiny-llama`);
    const adapter = await readAdapter(`${FX}/tiny-llama/adapter`, localFiles(), model.config);
    const nodes: number[] = [];
    const update = (recompute: boolean) => {
      const m = emitTrainingModels({ model, lora: adapter.config, loss: LOSS, layout, recompute });
      nodes.push(readModel(m.trainingModel).nodes.length);
      const trainable = m.params.map((p) => ({
        name: p.name,
        dims: p.shape,
        data: adapter.tensors.get(p.key)!.data as Float32Array,
      }));
      return oneUpdate({
        bytes: {
          checkpoint: writeCheckpoint({ version: CHECKPOINT_VERSION, trainable, frozen: m.frozen }),
          trainingModel: m.trainingModel,
          optimizerModel: emitOptimizerModel({ ...SGD_LR1, numParams: m.params.length }),
        },
      });
    };
    const [x, y] = [await update(false), await update(true)];
    assert.ok(nodes[1] > nodes[0], `the recomputed layers are in the graph (${nodes[1]} vs ${nodes[0]} nodes)`);
    // The recomputed layer runs the same nodes on the same inputs: measured equal, bit for bit.
    assert.equal(x.loss, y.loss);
    assert.deepEqual(x.params, y.params);
  });
}
