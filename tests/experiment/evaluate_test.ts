/**
 * The checkpoint evaluation on a fixture model: samples at temperature 1 from the policy, log π_θ from
 * the generator, log π_sft from the scorer. The SFT model against itself has KL exactly as small as
 * float32 allows; an adapter has a positive KL whose per-sample terms are the scorer's log-ratios.
 */

import assert from "node:assert/strict";
import { sampleAndScore, summarize } from "../../src/experiment/evaluate.ts";
import { functionOracle } from "../../src/experiment/oracle.ts";
import { Generator } from "../../src/generate/generator.ts";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { loadModel } from "../../src/models/load.ts";
import { Scorer } from "../../src/models/score.ts";
import { Engine } from "../../src/runtime/session.ts";

const FX = new URL("../fixtures/", import.meta.url).pathname;

Deno.test("sampleAndScore: KL(sft || sft) ~ 0, KL(adapter || sft) > 0 and equal to the scorers' log-ratios", async () => {
  const engine = await Engine.create("wasm");
  const model = await loadModel(`${FX}tiny-gpt2`);
  const adapter = await readAdapter(`${FX}tiny-gpt2/adapter`, localFiles(), model.config);
  const gen = await Generator.create(model, { engine });
  const sft = await Scorer.create(model, { engine });
  const pol = await Scorer.create(model, { engine, adapter });
  try {
    const prompts = ["Hello", "The cat", "A"].map((text) => ({ text, ids: model.tokenizer.encode(text) }));
    const oracle = functionOracle("length", (_p, c) => c.length);
    const opts = { samplesPerPrompt: 4, maxNewTokens: 8, decodePrompts: 2, seed: 3 };

    const base = await sampleAndScore(gen, sft, oracle, prompts, opts);
    assert.equal(base.samples.length, 12);
    assert.deepEqual(base.samples.map((s) => s.prompt), [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    // Same model both ways: only the cached decode vs full forward float32 difference remains
    // (measured ≤ 2e-5 per sequence, see tests/generate/logprobs_test.ts).
    for (const s of base.samples) assert.ok(Math.abs(s.logpPolicy - s.logpSft) < 2e-4);
    const e0 = summarize(base.samples, base.seconds);
    assert.ok(Math.abs(e0.kl.mean) < 2e-4);
    assert.equal(e0.prompts, 3);
    assert.equal(e0.reward.mean, base.samples.reduce((a, s) => a + s.text.length, 0) / 12);

    await gen.setAdapter(adapter);
    const tuned = await sampleAndScore(gen, sft, oracle, prompts, opts);
    const polScores = await pol.score(
      tuned.samples.map((s) => ({ promptIds: prompts[s.prompt].ids, completionIds: s.tokenIds })),
    );
    // log π_θ from the generator is the policy scorer's log-prob of the very ids sampled.
    tuned.samples.forEach((s, i) => assert.ok(Math.abs(s.logpPolicy - polScores[i]) < 2e-4, `${i}`));
    const e1 = summarize(tuned.samples, tuned.seconds);
    // The fixture adapter changes the logits by > 1e-2 (generator_test): its KL is clearly positive.
    assert.ok(e1.kl.mean > 0.01, `KL ${e1.kl.mean}`);
    assert.ok(e1.kl.se >= 0 && Number.isFinite(e1.kl.se));
    assert.ok(e1.eosFraction >= 0 && e1.eosFraction <= 1);
  } finally {
    await pol.release();
    await sft.release();
    await gen.release();
  }
});
