import assert from "node:assert/strict";
import { Graph } from "../../src/onnx/graph.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { buildForward } from "../../src/models/forward.ts";
import { ropeInvFreq } from "../../src/models/rope.ts";
import { engineFor, FIXTURE_MODELS, fixtureModel, golden, maxLogitDiff, runLogits } from "./_helpers.ts";

/**
 * Logits against transformers' float32 logits (|logit| up to 11): 10x the worst measured, 5.9e-6 on
 * wasm and 7.6e-6 on WebGPU (float32 sums in another order than PyTorch's).
 */
const LOGIT_TOL = { wasm: 6e-5, webgpu: 8e-5 } as const;

for (const m of FIXTURE_MODELS) {
  Deno.test(`forward ${m} (wasm): logits within ${LOGIT_TOL.wasm.toExponential()} of transformers`, async () => {
    const model = await fixtureModel(m);
    const gold = await golden(m);
    const logits = await runLogits(await engineFor("wasm"), model, gold.logits.input_ids);
    const d = maxLogitDiff(logits, gold, model.config.vocabSize);
    console.log(`  max |logit diff| ${d.toExponential(2)}`);
    assert.ok(d < LOGIT_TOL.wasm, `max |logit diff| ${d}`);
  });
}

Deno.test(`forward tiny-llama (webgpu): logits within ${LOGIT_TOL.webgpu.toExponential()} of transformers`, async () => {
  const model = await fixtureModel("tiny-llama");
  const gold = await golden("tiny-llama");
  const logits = await runLogits(await engineFor("webgpu"), model, gold.logits.input_ids);
  const d = maxLogitDiff(logits, gold, model.config.vocabSize);
  console.log(`  max |logit diff| ${d.toExponential(2)}`);
  assert.ok(d < LOGIT_TOL.webgpu, `max |logit diff| ${d}`);
});

/**
 * Prefix then continuation with the KV cache (and an all-ones mask over past + new) must give the
 * logits of one full pass; a left-padded batch with explicit positions must give the unpadded
 * logits on its real tokens.
 */
for (const m of ["tiny-gpt2", "tiny-llama"]) {
  Deno.test(`forward ${m}: KV cache and left padding reproduce the full pass`, async () => {
    const model = await fixtureModel(m);
    const gold = await golden(m);
    const e = await engineFor("wasm");
    const ids: number[][] = gold.logits.input_ids;
    const [B, L] = [ids.length, ids[0].length];
    const V = model.config.vocabSize;
    const full = await runLogits(e, model, ids);

    const g = new Graph();
    const c = model.config;
    const inputIds = g.input("input_ids", "int64", ["batch", "seq"]);
    const attentionMask = g.input("attention_mask", "int64", ["batch", "past+seq"]);
    const positionIds = g.input("position_ids", "int64", ["batch", "seq"]);
    const past = Array.from({ length: c.numLayers }, (_, i) => ({
      key: g.input(`past_key_${i}`, "float32", ["batch", c.numKvHeads, "past", c.headDim]),
      value: g.input(`past_value_${i}`, "float32", ["batch", c.numKvHeads, "past", c.headDim]),
    }));
    const out = buildForward(g, model, { inputIds, attentionMask, positionIds, past });
    g.output(out.logits, "logits");
    out.present.forEach((p, i) => {
      g.output(p.key, `present_key_${i}`);
      g.output(p.value, `present_value_${i}`);
    });
    const s = await e.createSession(serializeModel(g));
    const i64 = (a: number[]) => BigInt64Array.from(a, BigInt);
    const run = async (chunk: number[][], mask: number[][], pos: number[][], cache: Float32Array[], P: number) => {
      const T = chunk[0].length;
      const feeds: Record<string, ReturnType<typeof e.tensor>> = {
        input_ids: e.tensor(i64(chunk.flat()), [B, T]),
        attention_mask: e.tensor(i64(mask.flat()), [B, P + T]),
        position_ids: e.tensor(i64(pos.flat()), [B, T]),
      };
      for (let i = 0; i < c.numLayers; i++) {
        feeds[`past_key_${i}`] = e.tensor(cache[2 * i], [B, c.numKvHeads, P, c.headDim]);
        feeds[`past_value_${i}`] = e.tensor(cache[2 * i + 1], [B, c.numKvHeads, P, c.headDim]);
      }
      return await s.run(feeds);
    };
    // Step 1: a 1-token dummy past, fully masked out, then the prefix of 5 tokens.
    const P0 = 1, K = 5;
    const dummy = Array.from(
      { length: 2 * c.numLayers },
      () => new Float32Array(B * c.numKvHeads * P0 * c.headDim).fill(7),
    );
    const r1 = await run(
      ids.map((r) => r.slice(0, K)),
      ids.map(() => [0, ...Array(K).fill(1)]),
      ids.map(() => [0, 1, 2, 3, 4]),
      dummy,
      P0,
    );
    const cache = Array.from({ length: c.numLayers }, (_, i) => [
      r1[`present_key_${i}`].data as Float32Array,
      r1[`present_value_${i}`].data as Float32Array,
    ]).flat();
    const r2 = await run(
      ids.map((r) => r.slice(K)),
      ids.map(() => [0, ...Array(L).fill(1)]),
      ids.map(() => Array.from({ length: L - K }, (_, t) => K + t)),
      cache,
      P0 + K,
    );
    const l1 = r1.logits.data as Float32Array, l2 = r2.logits.data as Float32Array;
    let d = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < L; t++) {
        for (let v = 0; v < V; v++) {
          const got = t < K ? l1[(b * K + t) * V + v] : l2[(b * (L - K) + t - K) * V + v];
          d = Math.max(d, Math.abs(got - full[(b * L + t) * V + v]));
        }
      }
    }
    assert.ok(d < 1e-4, `cached vs full: max |logit diff| ${d}`);
    assert.deepEqual(r2.present_key_0.dims, [B, c.numKvHeads, P0 + L, c.headDim]);
    await s.release();
  });
}

Deno.test("rope: inverse frequencies follow the default, linear and llama3 formulas", () => {
  // 1 / 10000^(2i/16) = 10^(-i/2)
  const base = ropeInvFreq({ headDim: 16, ropeTheta: 10000, ropeScaling: null });
  const want = [
    1,
    0.31622776601683794,
    0.1,
    0.031622776601683794,
    0.01,
    0.0031622776601683794,
    0.001,
    0.00031622776601683794,
  ];
  want.forEach((w, i) => assert.ok(Math.abs(base[i] - w) <= 1e-7 * w, `inv_freq[${i}] ${base[i]} vs ${w}`));
  // llama3 scaling (factor 8, low 1, high 4, original 32): the wavelengths 2π/f are
  // 6.3, 19.9, 62.8, ... so [0] stays (< 8), [2..] are divided by 8 (> 32), [1] is smoothed.
  const l3 = ropeInvFreq({
    headDim: 16,
    ropeTheta: 10000,
    ropeScaling: { type: "llama3", factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32 },
  });
  assert.equal(l3[0], base[0]);
  for (let i = 2; i < 8; i++) assert.equal(l3[i], Math.fround(base[i] / 8));
  const smooth = (32 / ((2 * Math.PI) / base[1]) - 1) / (4 - 1);
  assert.equal(l3[1], Math.fround((1 - smooth) * (base[1] / 8) + smooth * base[1]));
  const lin = ropeInvFreq({ headDim: 16, ropeTheta: 10000, ropeScaling: { type: "linear", factor: 4 } });
  lin.forEach((f, i) => assert.equal(f, Math.fround(base[i] / 4)));
});

Deno.test("forward tiny-llama: logitsPositions 'last' gives the last row of the full logits", async () => {
  const model = await fixtureModel("tiny-llama");
  const gold = await golden("tiny-llama");
  const e = await engineFor("wasm");
  const ids: number[][] = gold.logits.input_ids;
  const [B, L, V] = [ids.length, ids[0].length, model.config.vocabSize];
  const full = await runLogits(e, model, ids);
  const g = new Graph();
  const out = buildForward(g, model, {
    inputIds: g.input("input_ids", "int64", ["batch", "seq"]),
    logitsPositions: "last",
  });
  assert.deepEqual(out.logits.shape, ["batch", 1, V]);
  g.output(out.logits, "logits");
  const s = await e.createSession(serializeModel(g));
  const r = await s.run({ input_ids: e.tensor(BigInt64Array.from(ids.flat(), BigInt), [B, L]) });
  assert.deepEqual(r.logits.dims, [B, 1, V]);
  const last = r.logits.data as Float32Array;
  for (let b = 0; b < B; b++) {
    for (let v = 0; v < V; v++) assert.ok(Math.abs(last[b * V + v] - full[(b * L + L - 1) * V + v]) < 1e-5);
  }
  await s.release();
});
