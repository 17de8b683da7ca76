/**
 * `logprobs: true`: each sampled token's log-probability under the model's own distribution, taken
 * from the logits it was drawn from. The experiment's KL estimator needs log π_θ(y|x) of exactly the
 * sequence sampled (EOS included when it ended it, nothing after a length cut), so the sums must equal
 * what the scorer computes for prompt + tokenIds, with and without an adapter.
 */

import assert from "node:assert/strict";
import { Generator } from "../../src/generate/generator.ts";
import { logSoftmaxAt } from "../../src/generate/sampling.ts";
import { localFiles } from "../../src/io/files.ts";
import { readAdapter } from "../../src/lora/adapter.ts";
import { loadModel } from "../../src/models/load.ts";
import { Scorer } from "../../src/models/score.ts";
import { Engine } from "../../src/runtime/session.ts";
import { FIXTURES } from "./_support.ts";

const engine = await Engine.create("wasm");
// Float32 graphs: the cached decode (left-padded) and the scorer's full forward (right-padded)
// differ by ~1e-6 per token, measured up to 2e-5 on a 12-token sequence; 2e-4 is 10x that, far
// below the cost of one wrong token (several nats).
const TOL = 2e-4;

Deno.test("logSoftmaxAt equals log(softmax) computed naively", () => {
  const z = [1.5, -2, 0.25, 3, 3];
  const sum = z.reduce((s, x) => s + Math.exp(x), 0);
  for (let i = 0; i < z.length; i++) assert.ok(Math.abs(logSoftmaxAt(z, i) - Math.log(Math.exp(z[i]) / sum)) < 1e-12);
  // A row inside a batch: offset and length.
  assert.ok(Math.abs(logSoftmaxAt([9, 9, ...z], 3, 2, 5) - Math.log(Math.exp(z[3]) / sum)) < 1e-12);
  assert.throws(() => logSoftmaxAt(z, 5), /outside \[0, 5\)/);
});

for (
  const [name, dir, withAdapter] of [
    ["tiny-gpt2 + adapter", `${FIXTURES}tiny-gpt2`, true],
    ["review-gpt2", new URL("../../models/review-gpt2", import.meta.url).pathname, false],
  ] as const
) {
  Deno.test(`${name}: sampled sequences' logprob equals the scorer's log-prob of prompt + tokenIds`, async () => {
    const model = await loadModel(dir);
    const adapter = withAdapter ? await readAdapter(`${dir}/adapter`, localFiles(), model.config) : null;
    const gen = await Generator.create(model, { engine, adapter });
    const scorer = await Scorer.create(model, { engine, adapter: adapter ?? undefined });
    try {
      const prompts = ["The movie was", "I", "What a terrible waste of"].map((p) => model.tokenizer.encode(p));
      const opts = { temperature: 1, maxNewTokens: 12, numSamples: 3, seed: 5, logprobs: true } as const;
      const res = await gen.generate(prompts, opts);
      // Ended by EOS and by the length cap both occur, so both stop paths are covered.
      const reasons = new Set(res.sequences.map((s) => s.finishReason));
      if (name === "review-gpt2") assert.deepEqual([...reasons].sort(), ["eos", "length"]);
      const scores = await scorer.score(
        res.sequences.map((s) => ({ promptIds: s.promptIds, completionIds: s.tokenIds })),
      );
      res.sequences.forEach((s, i) => {
        assert.equal(s.tokenLogprobs!.length, s.tokenIds.length);
        assert.ok(s.tokenLogprobs!.every((x) => x <= 0 && Number.isFinite(x)));
        assert.ok(Math.abs(s.logprob! - s.tokenLogprobs!.reduce((a, b) => a + b, 0)) < 1e-9);
        assert.ok(Math.abs(s.logprob! - scores[i]) < TOL, `row ${i}: ${s.logprob} vs scorer ${scores[i]}`);
      });
      // The option changes nothing else: the same seed draws the same tokens without it.
      const plain = await gen.generate(prompts, { ...opts, logprobs: false });
      assert.deepEqual(plain.sequences.map((s) => s.tokenIds), res.sequences.map((s) => s.tokenIds));
      assert.equal(plain.sequences[0].logprob, undefined);
      // Greedy with logprobs: the same tokens as greedy without (argmax on the host vs in the graph).
      const g1 = await gen.generate(prompts, { temperature: 0, maxNewTokens: 8, logprobs: true });
      const g0 = await gen.generate(prompts, { temperature: 0, maxNewTokens: 8 });
      assert.deepEqual(g1.sequences.map((s) => s.tokenIds), g0.sequences.map((s) => s.tokenIds));
      assert.ok(g1.sequences.every((s) => Number.isFinite(s.logprob)));
    } finally {
      await scorer.release();
      await gen.release();
    }
  });
}
