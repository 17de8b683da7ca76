import assert from "node:assert/strict";
import { localFiles } from "../../src/io/files.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { buildScoringGraph, Scorer } from "../../src/models/score.ts";
import {
  engineFor,
  FIXTURE_MODELS,
  fixtureModel,
  FIXTURES,
  golden,
  LOGP_TOL,
  REVIEW_GPT2,
  runLogits,
} from "./_helpers.ts";

interface Example {
  prompt_ids: number[];
  completion_ids: number[];
  base: { float32: number };
  adapter: { float32: number };
}

function maxDiff(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i])));
}

for (const m of FIXTURE_MODELS) {
  Deno.test(`score ${m} (wasm): base and adapter log-probs match transformers, one by one and batched`, async () => {
    const model = await fixtureModel(m);
    const gold = await golden(m);
    const ex = gold.logps.examples as Example[];
    const seqs = ex.map((e) => ({ promptIds: e.prompt_ids, completionIds: e.completion_ids }));
    const engine = await engineFor("wasm");
    const adapter = await readAdapter(`${FIXTURES}${m}/adapter`, localFiles(), model.config);
    for (
      const [label, sc] of [["base", await Scorer.create(model, { engine })], [
        "adapter",
        await Scorer.create(model, { engine, adapter }),
      ]] as const
    ) {
      const want = ex.map((e) => e[label].float32);
      const one = await sc.score(seqs, { batchSize: 1 });
      const all = await sc.score(seqs, { batchSize: 4 });
      console.log(`  ${label}: max |logp diff| ${Math.max(maxDiff(one, want), maxDiff(all, want)).toExponential(2)}`);
      assert.ok(maxDiff(one, want) < LOGP_TOL, `${label} one by one: ${one} vs ${want}`);
      assert.ok(maxDiff(all, want) < LOGP_TOL, `${label} batched: ${all} vs ${want}`);
      await sc.release();
    }
  });
}

Deno.test("score tiny-llama: the golden right-padded batch (attention + completion masks) matches", async () => {
  const m = "tiny-llama";
  const model = await fixtureModel(m);
  const gold = await golden(m);
  const pb = gold.logps.padded_batch;
  const ex = gold.logps.examples as Example[];
  const engine = await engineFor("wasm");
  const adapter = await readAdapter(`${FIXTURES}${m}/adapter`, localFiles(), model.config);
  const [B, T] = [pb.input_ids.length, pb.input_ids[0].length];
  const targets = new BigInt64Array(B * T).fill(BigInt(pb.pad_token_id));
  const mask = new Float32Array(B * T);
  ex.forEach((e, b) => {
    const len = e.prompt_ids.length + e.completion_ids.length;
    for (let t = 0; t + 1 < len; t++) {
      targets[b * T + t] = BigInt(pb.input_ids[b][t + 1]);
      if (t + 1 >= e.prompt_ids.length) mask[b * T + t] = 1;
    }
  });
  for (const [label, ad] of [["base", undefined], ["adapter", adapter]] as const) {
    const s = await engine.createSession(serializeModel(buildScoringGraph(model, ad)));
    const r = await s.run({
      input_ids: engine.tensor(BigInt64Array.from(pb.input_ids.flat(), BigInt), [B, T]),
      attention_mask: engine.tensor(BigInt64Array.from(pb.attention_mask.flat(), BigInt), [B, T]),
      targets: engine.tensor(targets, [B, T]),
      completion_mask: engine.tensor(mask, [B, T]),
      temperature: engine.tensor(new Float32Array([1]), []),
    });
    const got = [...(r.logps.data as Float32Array)];
    console.log(`  ${label}: max |logp diff| ${maxDiff(got, pb[label].float32).toExponential(2)}`);
    assert.ok(maxDiff(got, pb[label].float32) < LOGP_TOL, `${label}: ${got} vs ${pb[label].float32}`);
    await s.release();
  }
});

Deno.test("score tiny-gpt2: temperature divides the logits before log-softmax", async () => {
  const model = await fixtureModel("tiny-gpt2");
  const engine = await engineFor("wasm");
  const prompt = [10, 20, 30], completion = [40, 50];
  const ids = [...prompt, ...completion];
  const logits = await runLogits(engine, model, [ids]);
  const V = model.config.vocabSize;
  const tau = 0.8;
  let want = 0;
  for (let t = prompt.length - 1; t < ids.length - 1; t++) {
    const row = Array.from(logits.subarray(t * V, (t + 1) * V), (x) => x / tau);
    const mx = Math.max(...row);
    const lse = mx + Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0));
    want += row[ids[t + 1]] - lse;
  }
  const sc = await Scorer.create(model, { engine });
  const [got] = await sc.score([{ promptIds: prompt, completionIds: completion }], { temperature: tau });
  const [plain] = await sc.score([{ promptIds: prompt, completionIds: completion }]);
  assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
  assert.ok(Math.abs(got - plain) > 1e-2);
  await assert.rejects(sc.score([{ promptIds: [], completionIds: [1] }]), /prompt is empty/);
  await assert.rejects(sc.score([{ promptIds: [1], completionIds: [512] }]), /outside the vocabulary/);
  await sc.release();
});

Deno.test("score tiny-llama (webgpu): adapter log-probs of the golden examples, batched", async () => {
  const m = "tiny-llama";
  const model = await fixtureModel(m);
  const gold = await golden(m);
  const ex = gold.logps.examples as Example[];
  const adapter = await readAdapter(`${FIXTURES}${m}/adapter`, localFiles(), model.config);
  const engine = await engineFor("webgpu");
  const sc = await Scorer.create(model, { engine, adapter });
  assert.equal(sc.backend, "webgpu");
  const got = await sc.score(ex.map((e) => ({ promptIds: e.prompt_ids, completionIds: e.completion_ids })), {
    batchSize: 4,
  });
  console.log(`  max |logp diff| ${maxDiff(got, ex.map((e) => e.adapter.float32)).toExponential(2)}`);
  assert.ok(maxDiff(got, ex.map((e) => e.adapter.float32)) < LOGP_TOL, `${got}`);
  await sc.release();
});

Deno.test("score review-gpt2: loads, and a fluent completion beats its reversed tokens", async () => {
  const model = await fixtureModel(REVIEW_GPT2);
  const tok = model.tokenizer;
  const sc = await Scorer.create(model, { engine: await engineFor("wasm") });
  const prompt = tok.encode("The food was");
  const good = tok.encode(" really good and the service was great.");
  const bad = [...good].reverse();
  const [lg, lb, lg1] = await sc.score([
    { promptIds: prompt, completionIds: good },
    { promptIds: prompt, completionIds: bad },
    { promptIds: prompt, completionIds: good.slice(0, 1) },
  ]);
  assert.ok(Number.isFinite(lg) && lg < 0 && lg1 < 0);
  assert.ok(lg > lb + 5, `fluent ${lg} vs reversed ${lb}`);
  const [alone] = await sc.score([{ promptIds: prompt, completionIds: good }], { batchSize: 1 });
  assert.ok(Math.abs(alone - lg) < 1e-4);
  await sc.release();
});
