/**
 * Weights held once, in their stored type and layout:
 * - float16 / bfloat16 checkpoints stay 16-bit after loading and give the logits and log-probs of
 *   their float32 upcast (the casts in the graph are exact);
 * - a graph built from a loaded model hands ORT the safetensors file's own bytes as external data
 *   (the same buffer, no copy of the weights);
 * - in training and scoring graphs, every 2-D weight is read only through `dependOn` (a Reshape)
 *   or a Gather: no Transpose, Cast or MatMul of the stored weight that ORT could fold or prepack
 *   into a second copy at session creation.
 */
import assert from "node:assert/strict";
import { type FileSource, localFiles } from "../../src/io/files.ts";
import { loadModel } from "../../src/models/load.ts";
import { halfToFloat, tensorToFloat32 } from "../../src/models/safetensors.ts";
import { buildScoringGraph, Scorer, type ScoreSequence } from "../../src/models/score.ts";
import { toHalfBits } from "../../src/models/half_dtypes.ts";
import type { Graph, TensorData } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { createLoraConfig } from "../../src/lora/config.ts";
import { buildPreferenceGraph } from "../../src/train/preference_graph.ts";
import { compileStep } from "../../src/train/step.ts";
import { sgd } from "../../src/optim/sgd.ts";
import { engineFor, FIXTURES, halfModelFiles, runLogits } from "./_helpers.ts";
import { nativeCpuOrSkip } from "../support/native.ts";

const native = await nativeCpuOrSkip();

// Both CPU engines cast the stored 16-bit weights next to each use (halfDtypesFor keeps them):
// ORT Web's wasm EP and onnxruntime-node's CPU EP (native-cpu) must both run those Casts.
for (
  const [dtype, backend] of [
    ["bfloat16", "wasm"],
    ["float16", "wasm"],
    ["bfloat16", "native-cpu"],
    ["float16", "native-cpu"],
  ] as const
) {
  Deno.test({
    name: `${dtype} weights stay ${dtype} and give the logits and log-probs of their float32 upcast (${backend})`,
    ignore: backend === "native-cpu" && !native,
    fn: async () => {
      const files = await halfModelFiles(dtype);
      const half = await loadModel("m", files);
      const upcast = await loadModel("m", files, { dtype: "float32" });
      for (const [name, t] of half.weights) {
        assert.equal(t.dtype, dtype, name);
        assert.deepEqual(tensorToFloat32(t), upcast.weights.get(name)!.data, name);
      }
      const engine = await engineFor(backend);
      const ids = [[1, 5, 9, 13, 2, 7], [3, 4, 8, 1, 0, 6]];
      const a = await runLogits(engine, half, ids), b = await runLogits(engine, upcast, ids);
      // The same float32 values reach the same kernels: equal up to summation order (measured 0).
      let err = 0;
      for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
      assert.ok(err <= 1e-5, `max |logit diff| ${err}`);

      const seqs: ScoreSequence[] = [{ promptIds: [1, 5, 9], completionIds: [13, 2, 7] }, {
        promptIds: [3],
        completionIds: [4, 8, 1, 0],
      }];
      const lp = async (m: typeof half) => {
        const s = await Scorer.create(m, { engine });
        try {
          return await s.score(seqs);
        } finally {
          await s.release();
        }
      };
      const [x, y] = [await lp(half), await lp(upcast)];
      x.forEach((v, i) => assert.ok(Math.abs(v - y[i]) <= 1e-5, `log-prob ${i}: ${v} vs ${y[i]}`));
    },
  });
}

Deno.test("bfloat16 weights on WebGPU (float16 with shader-f16, else float32) score like the float32 upcast on wasm", async () => {
  const files = await halfModelFiles("bfloat16");
  const half = await loadModel("m", files);
  const upcast = await loadModel("m", files, { dtype: "float32" });
  const seqs: ScoreSequence[] = [{ promptIds: [1, 5, 9], completionIds: [13, 2, 7] }];
  const score = async (m: typeof half, backend: "wasm" | "webgpu") => {
    const s = await Scorer.create(m, { engine: await engineFor(backend) });
    try {
      return await s.score(seqs);
    } finally {
      await s.release();
    }
  };
  const [x] = await score(half, "webgpu"), [y] = await score(upcast, "wasm");
  // bfloat16 → float16 is exact in float16's normal range; WebGPU vs wasm differ by ~1e-6 (tests above).
  assert.ok(Math.abs(x - y) <= 1e-4, `${x} vs ${y}`);
});

Deno.test("a graph of a loaded model hands ORT the safetensors bytes themselves as external data", async () => {
  const read = new Map<string, Uint8Array>();
  const local = localFiles();
  const recording: FileSource = {
    ...local,
    readBytes: async (p) => {
      const b = await local.readBytes(p);
      read.set(p, b);
      return b;
    },
  };
  const model = await loadModel(`${FIXTURES}tiny-gpt2`, recording);
  const file = read.get(`${FIXTURES}tiny-gpt2/model.safetensors`)!;
  const s = serializeModel(buildScoringGraph(model), { externalDataThreshold: 1024 });
  assert.ok(s.externalData);
  const ext = s.externalData.find((f) => f.path === "model.safetensors");
  assert.ok(ext, `external files: ${s.externalData.map((f) => f.path)}`);
  assert.equal(ext.data, file, "the file's own buffer, not a copy");
  // Everything large is in the file: the protobuf and any generated blob are small beside it.
  const rest = s.model.byteLength + s.externalData.filter((f) => f !== ext).reduce((n, f) => n + f.data.byteLength, 0);
  assert.ok(rest < file.byteLength / 10, `${rest} bytes outside the file vs ${file.byteLength}`);
});

/** Nodes that read each 2-D model weight, by op. */
function weightReaders(g: Graph, weights: ReadonlyMap<string, TensorData>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const n of g.nodes) {
    for (const i of n.inputs) {
      const t = g.initializers.get(i);
      if (!t || t.shape.length !== 2 || !weights.has(i)) continue;
      if (!out.has(i)) out.set(i, new Set());
      out.get(i)!.add(n.op);
    }
  }
  return out;
}

for (const m of ["tiny-gpt2", "tiny-llama"]) {
  Deno.test(`${m}: training and scoring graphs read every weight matrix only through Reshape (dependOn) or Gather`, async () => {
    const model = await loadModel(`${FIXTURES}${m}`);
    const lora = createLoraConfig(model.config, { r: 4 });
    for (const recompute of [false, true]) {
      const pg = buildPreferenceGraph(model, lora, {
        loss: "exo-pref",
        betaPi: 0.1,
        betaR: 0.1,
        eps: 1e-3,
        temperature: 1,
      }, { recompute });
      compileStep({ graph: pg.graph, loss: pg.loss, params: pg.params, optimizer: sgd() });
      for (const g of [pg.graph, buildScoringGraph(model)]) {
        const readers = weightReaders(g, model.weights);
        assert.ok(readers.size > 4, `${g.name}: weight matrices found`);
        for (const [name, ops] of readers) {
          for (const o of ops) {
            assert.ok(o === "Reshape" || o === "Gather", `${g.name} (recompute ${recompute}): ${name} read by ${o}`);
          }
        }
      }
    }
  });
}

Deno.test("toHalfBits: every half value round-trips, and floats round to the nearest half (ties to even)", () => {
  const all = Float32Array.from({ length: 65536 }, (_, h) => halfToFloat(h));
  const back = toHalfBits(all);
  for (let h = 0; h < 65536; h++) {
    if (Number.isNaN(all[h])) assert.ok(Number.isNaN(halfToFloat(back[h])), `NaN ${h}`);
    else assert.equal(back[h], h, `half ${h.toString(16)}`);
  }
  // Between two neighbouring halves: below the midpoint rounds down, above up, at it to the even one.
  const lo = halfToFloat(0x3c01), hi = halfToFloat(0x3c02), mid = (lo + hi) / 2;
  assert.deepEqual([...toHalfBits(Float32Array.from([mid - 1e-7, mid + 1e-7, mid]))], [0x3c01, 0x3c02, 0x3c02]);
  assert.deepEqual([...toHalfBits(Float32Array.from([1e6, -1e6, 1e-9]))], [0x7c00, 0xfc00, 0]);
});

// releaseWeights drops the JS copy once a session exists: that is safe only if the ORT build copied
// the external-data bytes (the safetensors file itself) at session creation instead of keeping
// pointers into them. Scribbling over the file's bytes after creation must not change the scores.
for (const backend of ["wasm", "native-cpu"] as const) {
  Deno.test({
    name: `${backend}: a session keeps its own copy of the weights (the file's bytes can go after creation)`,
    ignore: backend === "native-cpu" && !native,
    fn: async () => {
      const files: Uint8Array[] = [];
      const local = localFiles();
      const recording: FileSource = {
        ...local,
        readBytes: async (p) => {
          const b = await local.readBytes(p);
          if (p.endsWith(".safetensors")) files.push(b);
          return b;
        },
      };
      const model = await loadModel(`${FIXTURES}tiny-llama`, recording);
      assert.equal(files.length, 1);
      const s = await Scorer.create(model, { engine: await engineFor(backend) });
      try {
        const seqs: ScoreSequence[] = [{ promptIds: [1, 5, 9], completionIds: [13, 2, 7] }];
        const before = await s.score(seqs);
        files[0].fill(0x7f, 64); // past the header: every weight becomes ~3.4e38
        assert.deepEqual(await s.score(seqs), before);
      } finally {
        await s.release();
      }
    },
  });
}
