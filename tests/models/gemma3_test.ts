/**
 * What is Gemma 3's own, checked beyond the goldens every family meets (logits, log-probs, LoRA
 * gradients, the SGD step, generation; see forward_test, score_test, grad_chain_test, ...):
 *
 * - the sliding window and `query_pre_attn_scalar` are real: turning either off moves our logits
 *   away from the golden by what transformers itself reports (`checks.gemma3`), position by position;
 * - the per-layer-type RoPE bases matter;
 * - generation keeps `sliding_window - 1` cache slots for the sliding layers, whatever the length;
 * - the embedding factor is applied in the weight's dtype (bfloat16: rounded, as transformers);
 * - final logit soft-capping, in the logits, in the fused head (values and gradients) and in
 *   generation, against the plain `cap · tanh(z / cap)` of the logits.
 */
import assert from "node:assert/strict";
import { Graph, type TensorData } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { backward } from "../../src/autodiff/mod.ts";
import { buildForward, lmHead } from "../../src/models/forward.ts";
import { buildHeadLogprobs } from "../../src/models/head_logprobs.ts";
import { ModelBuilder } from "../../src/models/layers.ts";
import type { LoadedModel } from "../../src/models/model.ts";
import { buildTokenLogprobs } from "../../src/models/score.ts";
import { roundToDtype } from "../../src/models/half_dtypes.ts";
import type { Gemma3Config } from "../../src/models/families/gemma3.ts";
import { buildGenerationGraph } from "../../src/generate/graphs.ts";
import { KvDecoder } from "../../src/generate/decoder.ts";
import { Rng } from "../../src/util/rng.ts";
import { engineFor, fixtureModel, golden, runLogits } from "./_helpers.ts";

const M = "tiny-gemma3";

/** The fixture with some config fields changed (same weights). */
async function variant(edit: Partial<Gemma3Config>): Promise<LoadedModel> {
  const model = await fixtureModel(M);
  return { ...model, config: { ...(model.config as Gemma3Config), ...edit } };
}

/** Per position, max over batch and vocabulary of |a - b| (logits [B, L, V]). */
function perPosition(a: Float32Array, b: ArrayLike<number>, B: number, L: number, V: number): number[] {
  return Array.from({ length: L }, (_, p) => {
    let d = 0;
    for (let r = 0; r < B; r++) {
      for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(a[(r * L + p) * V + v] - b[(r * L + p) * V + v]));
    }
    return d;
  });
}

Deno.test("gemma3: turning the sliding window off changes the logits exactly as it does in transformers", async () => {
  const gold = await golden(M);
  const ids: number[][] = gold.logits.input_ids;
  const [B, L, V] = [ids.length, ids[0].length, gold.vocab_size];
  const want = Float32Array.from(gold.logits.values.flat(2) as number[]);
  const e = await engineFor("wasm");
  const effect = gold.checks.gemma3.sliding_window_effect;
  const off = await runLogits(e, await variant({ slidingWindow: effect.compared_with.sliding_window }), ids);
  const got = perPosition(off, want, B, L, V);
  const ref = effect.max_abs_logit_diff_per_position as number[];
  // The window (4) reaches back over every earlier token until position 4: no effect there.
  assert.deepEqual(ref.slice(0, 4), [0, 0, 0, 0]);
  got.forEach((d, p) => {
    // Ours differ from transformers' float32 logits by < 1e-5 either way (forward_test); the
    // effects agree to 3.8e-6 (measured), held to 4e-5.
    assert.ok(Math.abs(d - ref[p]) < 4e-5, `position ${p}: effect ${d} vs transformers' ${ref[p]}`);
  });
  assert.ok(Math.min(...got.slice(4)) > 1, "the window changes every later position by more than 1");
});

Deno.test("gemma3: query_pre_attn_scalar and the per-layer-type RoPE bases matter as in transformers", async () => {
  const gold = await golden(M);
  const ids: number[][] = gold.logits.input_ids;
  const [B, L, V] = [ids.length, ids[0].length, gold.vocab_size];
  const want = Float32Array.from(gold.logits.values.flat(2) as number[]);
  const e = await engineFor("wasm");
  const q = gold.checks.gemma3.query_pre_attn_scalar_effect;
  const plain = await runLogits(e, await variant({ queryPreAttnScalar: q.compared_with.query_pre_attn_scalar }), ids);
  const d = Math.max(...perPosition(plain, want, B, L, V));
  // Measured 3e-7 apart; held to 1e-5 (logits agree to 7e-6 with transformers').
  assert.ok(Math.abs(d - q.max_abs_logit_diff) < 1e-5, `effect ${d} vs transformers' ${q.max_abs_logit_diff}`);
  const c = (await fixtureModel(M)).config as Gemma3Config;
  assert.notEqual(c.rope.sliding_attention.theta, c.rope.full_attention.theta);
  const oneBase = await runLogits(
    e,
    await variant({ rope: { ...c.rope, sliding_attention: c.rope.full_attention } }),
    ids,
  );
  assert.ok(Math.max(...perPosition(oneBase, want, B, L, V)) > 1e-2, "the local RoPE base changes the logits");
});

Deno.test("gemma3: generation keeps sliding_window - 1 cache slots in the sliding layers, the whole past in the others", async () => {
  const model = await fixtureModel(M);
  const c = model.config as Gemma3Config;
  const W = c.slidingWindow;
  const decode = buildGenerationGraph(model, "decode");
  c.layerTypes.forEach((t, i) => {
    const want = t === "sliding_attention" ? ["rows", 1, W - 1, 16] : ["rows", 1, "past", 16];
    for (const name of [`past_key_${i}`, `present_key_${i}`, `past_value_${i}`]) {
      const v = [...decode.inputs, ...decode.outputs].find((x) => x.name === name)!;
      assert.deepEqual(
        v.shape,
        name.startsWith("present") && t !== "sliding_attention" ? ["rows", 1, "past+1", 16] : want,
        name,
      );
    }
  });
  // Prompts shorter and longer than the window: the sliding layers' cache is W - 1 long either way.
  const e = await engineFor("wasm");
  const prefill = await e.createSession(serializeModel(buildGenerationGraph(model, "prefill")));
  for (const T of [2, 7]) {
    const ids = BigInt64Array.from({ length: T }, (_, t) => BigInt(10 + t));
    const r = await prefill.run({
      input_ids: e.tensor(ids, [1, T]),
      attention_mask: e.tensor(new BigInt64Array(T).fill(1n), [1, T]),
      position_ids: e.tensor(BigInt64Array.from({ length: T }, (_, t) => BigInt(t)), [1, T]),
      row_source: e.tensor(new BigInt64Array([0n]), [1]),
    });
    c.layerTypes.forEach((t, i) => {
      assert.deepEqual(
        r[`present_key_${i}`].dims,
        [1, 1, t === "sliding_attention" ? W - 1 : T, 16],
        `T ${T} layer ${i}`,
      );
    });
  }
  await prefill.release();
});

Deno.test("gemma3: the embedding factor is applied in the weight's dtype, as transformers does", async () => {
  // sqrt(640) = 25.2982...: bfloat16 holds 25.25, and each product is rounded to bfloat16 too.
  const factor = Math.sqrt(640);
  const rng = new Rng(3);
  const f32 = Float32Array.from({ length: 24 }, () => rng.next() * 4 - 2);
  const bf16 = Uint16Array.from(new Uint32Array(f32.buffer), (x) => (x + 0x7fff + ((x >>> 16) & 1)) >>> 16);
  const e = await engineFor("wasm");
  for (const t of [{ dtype: "bfloat16", shape: [8, 3], data: bf16 }, { dtype: "float32", shape: [8, 3], data: f32 }]) {
    const weights = new Map<string, TensorData>([["emb", t as TensorData]]);
    const model = { dir: "m", arch: "gemma3_text", config: { arch: "gemma3_text" }, weights } as unknown as LoadedModel;
    const g = new Graph();
    const ids = g.input("ids", "int64", [1, 8]);
    g.output(new ModelBuilder(g, model).embedScaled("emb", ids, factor), "y");
    const s = await e.createSession(serializeModel(g));
    const y = (await s.run({ ids: e.tensor(BigInt64Array.from({ length: 8 }, (_, i) => BigInt(7 - i)), [1, 8]) }))
      .y.data as Float32Array;
    await s.release();
    const rows = t.dtype === "bfloat16"
      ? Float32Array.from(bf16, (h) => new Float32Array(new Uint32Array([h << 16]).buffer)[0])
      : f32;
    const scale = roundToDtype(factor, t.dtype);
    assert.equal(scale, t.dtype === "bfloat16" ? 25.25 : Math.fround(factor));
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 3; j++) {
        const want = roundToDtype(rows[(7 - i) * 3 + j] * scale, t.dtype);
        assert.equal(y[i * 3 + j], want, `${t.dtype} [${i}, ${j}]`);
      }
    }
  }
});

Deno.test("gemma3: final logit soft-capping in the logits, the fused head (values and gradients) and generation", async () => {
  const cap = 3; // the fixture's logits reach ~11: a cap of 3 bends most of them
  const capped = await variant({ logitSoftcap: cap });
  const plainModel = await fixtureModel(M);
  const gold = await golden(M);
  const ids: number[][] = gold.logits.input_ids;
  const [B, L, V] = [ids.length, ids[0].length, gold.vocab_size];
  const e = await engineFor("wasm");
  // Logits: cap · tanh(z / cap) of the plain ones.
  const z = await runLogits(e, plainModel, ids), zc = await runLogits(e, capped, ids);
  let err = 0, moved = 0;
  for (let i = 0; i < z.length; i++) {
    err = Math.max(err, Math.abs(zc[i] - cap * Math.tanh(z[i] / cap)));
    moved = Math.max(moved, Math.abs(zc[i] - z[i]));
  }
  assert.ok(err < 7e-6, `capped logits vs cap·tanh(z/cap): ${err}`); // measured 6.6e-7
  assert.ok(moved > 1, "the cap bends the logits");

  // The fused head against log-softmax of the capped logits, values and d/d(hidden).
  const g = new Graph();
  const hidden = g.input("hidden", "float32", [B, L, 64]);
  const targets = g.input("targets", "int64", [B, L]);
  const weights = g.input("w", "float32", [B, L]);
  const mb = new ModelBuilder(g, capped);
  const fused = buildHeadLogprobs(mb, hidden, "model.embed_tokens.weight", targets, 1, 97); // several chunks
  const plain = buildTokenLogprobs(g, lmHead(mb, hidden, "model.embed_tokens.weight"), targets);
  for (const [name, lp] of [["fused", fused], ["plain", plain]] as const) {
    g.output(lp, name);
    const [dh] = backward(op.reduceSum(op.mul(lp, weights), [0, 1]), [hidden]);
    g.output(dh, `d_${name}`);
  }
  const s = await e.createSession(serializeModel(g));
  const rng = new Rng(5);
  const h = Float32Array.from({ length: B * L * 64 }, () => (rng.next() * 2 - 1) * 3);
  const r = await s.run({
    hidden: e.tensor(h, [B, L, 64]),
    targets: e.tensor(BigInt64Array.from(ids.flat(), BigInt), [B, L]),
    w: e.tensor(Float32Array.from({ length: B * L }, () => rng.next()), [B, L]),
  });
  await s.release();
  const maxAbs = (a: Float32Array) => Math.max(...a.map(Math.abs));
  const diff = (a: Float32Array, b: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
  const [lf, lpn] = [r.fused.data as Float32Array, r.plain.data as Float32Array];
  const [df, dp] = [r.d_fused.data as Float32Array, r.d_plain.data as Float32Array];
  // float32 sums in another order: measured 9.5e-7 (log-probs up to ~11) and 5.7e-7 of max |grad|.
  assert.ok(diff(lf, lpn) < 1e-5, `log-probs: ${diff(lf, lpn)}`);
  assert.ok(diff(df, dp) < 6e-6 * maxAbs(dp), `gradients: ${diff(df, dp)} of ${maxAbs(dp)}`);

  // Generation: the prefill's last-position logits are the capped forward's.
  const dec = await KvDecoder.create(e, capped);
  try {
    const out = await dec.prefill(ids, [0, 1], "logits");
    let d = 0;
    for (let b = 0; b < B; b++) {
      for (let v = 0; v < V; v++) d = Math.max(d, Math.abs(out.logits![b * V + v] - zc[(b * L + L - 1) * V + v]));
    }
    assert.ok(d < 1e-5, `generation logits vs capped forward: ${d}`); // measured 0 (the same kernels)
  } finally {
    await dec.release();
  }
  // buildForward's "last" logits carry the cap too.
  const g2 = new Graph();
  const out = buildForward(g2, capped, {
    inputIds: g2.input("input_ids", "int64", ["batch", "seq"]),
    logitsPositions: "last",
  });
  assert.deepEqual(out.logits.shape, ["batch", 1, V]);
});
