import assert from "node:assert/strict";
import fc from "fast-check";
import type { ModelConfig } from "../../src/models/config.ts";
import type { TensorData } from "../../src/onnx/graph.ts";
import { AdapterError, createLoraConfig, loraScaling } from "../../src/lora/config.ts";
import type { LoraAdapter } from "../../src/lora/adapter.ts";
import { mergeAdapter } from "../../src/lora/merge.ts";
import { loraTargets } from "../../src/lora/targets.ts";
import { Rng } from "../../src/util/rng.ts";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { loadSafetensorsDir, toTensorData } from "../../src/models/safetensors.ts";
import { parseModelConfig } from "../../src/models/config.ts";

function tinyConfig(arch: "gpt2" | "llama", hidden: number, inter: number): ModelConfig {
  const family = arch === "gpt2"
    ? { activation: "gelu_new" }
    : { activation: "silu", qkvBias: false, oBias: false, mlpBias: false, rope: { theta: 10000, scaling: null } };
  return {
    ...family,
    arch,
    vocabSize: 16,
    hiddenSize: hidden,
    numLayers: 1,
    numHeads: 2,
    numKvHeads: arch === "gpt2" ? 2 : 1,
    headDim: hidden / 2,
    intermediateSize: inter,
    maxPositions: 8,
    normEps: 1e-5,
    tieWordEmbeddings: true,
    bosTokenId: null,
    eosTokenIds: [],
    padTokenId: null,
    dtype: "float32",
  };
}

function randomArray(n: number, rng: Rng, f64 = false): Float32Array | Float64Array {
  const a = f64 ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** Random base weights and a random adapter (B non-zero, unlike a fresh init). */
function setup(mc: ModelConfig, r: number, rslora: boolean, seed: number, f64 = false) {
  const rng = new Rng(seed);
  const lora = createLoraConfig(mc, { r, alpha: 3, useRslora: rslora });
  const weights = new Map<string, TensorData>();
  const tensors = new Map<string, TensorData>();
  for (const t of loraTargets(mc, lora)) {
    const shape = t.fanInFanOut ? [t.inFeatures, t.outFeatures] : [t.outFeatures, t.inFeatures];
    weights.set(t.baseWeight, {
      dtype: f64 ? "float64" : "float32",
      shape,
      data: randomArray(t.inFeatures * t.outFeatures, rng, f64),
    });
    tensors.set(t.keyA, { dtype: "float32", shape: [r, t.inFeatures], data: randomArray(r * t.inFeatures, rng) });
    tensors.set(t.keyB, { dtype: "float32", shape: [t.outFeatures, r], data: randomArray(t.outFeatures * r, rng) });
  }
  weights.set("wte.weight", {
    dtype: "float32",
    shape: [16, mc.hiddenSize],
    data: randomArray(16 * mc.hiddenSize, rng),
  });
  const adapter: LoraAdapter = { config: lora, tensors };
  return { weights, adapter, lora, rng };
}

/** y = layer(W, x) in float64, for the layer's storage layout. */
function applyLayer(w: ArrayLike<number>, x: Float64Array, nIn: number, nOut: number, conv1d: boolean): Float64Array {
  const y = new Float64Array(nOut);
  for (let o = 0; o < nOut; o++) {
    let s = 0;
    for (let i = 0; i < nIn; i++) s += w[conv1d ? i * nOut + o : o * nIn + i] * x[i];
    y[o] = s;
  }
  return y;
}

Deno.test("merged layer computes base(x) + s·B(Ax) (float64 reference), GPT-2 Conv1D and Llama Linear", () => {
  fc.assert(
    fc.property(
      fc.constantFrom("gpt2", "llama") as fc.Arbitrary<"gpt2" | "llama">,
      fc.integer({ min: 1, max: 4 }).map((h) => 2 * h),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 4 }),
      fc.boolean(),
      fc.integer(),
      (arch, hidden, inter, r, rslora, seed) => {
        const mc = tinyConfig(arch, hidden, inter);
        const { weights, adapter, lora, rng } = setup(mc, r, rslora, seed);
        const s = loraScaling(lora);
        assert.equal(s, rslora ? 3 / Math.sqrt(r) : 3 / r);
        const merged = mergeAdapter(weights, adapter, mc);
        for (const t of loraTargets(mc, lora)) {
          const x = randomArray(t.inFeatures, rng, true) as Float64Array;
          const a = adapter.tensors.get(t.keyA)!.data as Float32Array;
          const b = adapter.tensors.get(t.keyB)!.data as Float32Array;
          // Reference: the LoRA forward pass, base(x) + s · B (A x), all in float64.
          const ax = new Float64Array(r);
          for (let k = 0; k < r; k++) for (let i = 0; i < t.inFeatures; i++) ax[k] += a[k * t.inFeatures + i] * x[i];
          const base = applyLayer(
            weights.get(t.baseWeight)!.data as Float32Array,
            x,
            t.inFeatures,
            t.outFeatures,
            t.fanInFanOut,
          );
          const got = applyLayer(
            merged.get(t.baseWeight)!.data as Float32Array,
            x,
            t.inFeatures,
            t.outFeatures,
            t.fanInFanOut,
          );
          for (let o = 0; o < t.outFeatures; o++) {
            let bax = 0;
            for (let k = 0; k < r; k++) bax += b[o * r + k] * ax[k];
            const want = base[o] + s * bax;
            // float32 rounding of each merged weight: ≤ 2^-24 relative per term.
            assert.ok(
              Math.abs(got[o] - want) <= 1e-5 * (1 + Math.abs(want)) * t.inFeatures,
              `${t.module}[${o}]: ${got[o]} vs ${want}`,
            );
          }
        }
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("merge equals fround(W + s·BA) elementwise, keeps float64, shares untouched tensors, mutates nothing", () => {
  for (const f64 of [false, true]) {
    const mc = tinyConfig("gpt2", 4, 6);
    const { weights, adapter, lora } = setup(mc, 2, false, 5, f64);
    const snapshot = new Map([...weights].map(([k, t]) => [k, (t.data as Float32Array).slice()]));
    const adapterSnapshot = new Map([...adapter.tensors].map(([k, t]) => [k, (t.data as Float32Array).slice()]));
    const merged = mergeAdapter(weights, adapter, mc);
    assert.deepEqual(new Map([...weights].map(([k, t]) => [k, t.data])), snapshot);
    assert.deepEqual(new Map([...adapter.tensors].map(([k, t]) => [k, t.data])), adapterSnapshot);
    assert.equal(merged.get("wte.weight"), weights.get("wte.weight"));
    const s = loraScaling(lora);
    for (const t of loraTargets(mc, lora)) {
      const w = weights.get(t.baseWeight)!, m = merged.get(t.baseWeight)!;
      assert.equal(m.dtype, w.dtype);
      assert.deepEqual(m.shape, w.shape);
      const a = adapter.tensors.get(t.keyA)!.data as Float32Array,
        b = adapter.tensors.get(t.keyB)!.data as Float32Array;
      // BA as an explicit [out, in] matrix, then transposed into the Conv1D [in, out] layout.
      const ba = Array.from(
        { length: t.outFeatures },
        (_, o) => Array.from({ length: t.inFeatures }, (_, i) => b[o * 2] * a[i] + b[o * 2 + 1] * a[t.inFeatures + i]),
      );
      for (let i = 0; i < t.inFeatures; i++) {
        for (let o = 0; o < t.outFeatures; o++) {
          const idx = i * t.outFeatures + o;
          const want = (w.data[idx] as number) + s * ba[o][i];
          assert.equal(m.data[idx], f64 ? want : Math.fround(want), `${t.baseWeight}[${i},${o}]`);
        }
      }
    }
  }
});

Deno.test("merging a zero-B (freshly initialised) adapter leaves weights equal; PEFT fixture merges", async () => {
  const mc = parseModelConfig(JSON.parse(await Deno.readTextFile("tests/fixtures/tiny-gpt2/config.json")), "c");
  const raw = await loadSafetensorsDir("tests/fixtures/tiny-gpt2", localFiles());
  const weights = new Map([...raw].map(([k, t]) => [k, toTensorData(t)]));
  const adapter = await readAdapter("tests/fixtures/tiny-gpt2/adapter", localFiles(), mc);
  const merged = mergeAdapter(weights, adapter, mc);
  const targets = new Set(loraTargets(mc, adapter.config).map((t) => t.baseWeight));
  assert.equal(targets.size, 6);
  for (const [k, t] of merged) {
    if (targets.has(k)) assert.notDeepEqual(t.data, weights.get(k)!.data, k);
    else assert.equal(t, weights.get(k), k);
  }
  const zeroB: LoraAdapter = {
    config: adapter.config,
    tensors: new Map(
      [...adapter.tensors].map((
        [k, t],
      ) => [k, k.includes("lora_B") ? { ...t, data: new Float32Array(t.data.length) } : t]),
    ),
  };
  for (const [k, t] of mergeAdapter(weights, zeroB, mc)) assert.deepEqual(t.data, weights.get(k)!.data, k);
});

Deno.test("merge names a missing or misshapen base weight", () => {
  const mc = tinyConfig("llama", 4, 6);
  const { weights, adapter } = setup(mc, 2, false, 1);
  const missing = new Map(weights);
  missing.delete("model.layers.0.mlp.up_proj.weight");
  assert.throws(
    () => mergeAdapter(missing, adapter, mc),
    (e: unknown) =>
      e instanceof AdapterError && /base weight "model\.layers\.0\.mlp\.up_proj\.weight" is missing/.test(e.message),
  );
  const wrong = new Map(weights);
  wrong.set("model.layers.0.self_attn.q_proj.weight", { dtype: "float32", shape: [2, 8], data: new Float32Array(16) });
  assert.throws(() => mergeAdapter(wrong, adapter, mc), /has shape \[2, 8\]; expected \[4, 4\]/);
});
