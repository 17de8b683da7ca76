import assert from "node:assert/strict";
import fc from "fast-check";
import { argmax, candidates, sampleToken, type SamplingOptions } from "../../src/generate/sampling.ts";
import { Rng } from "../../src/util/rng.ts";

/**
 * transformers' warpers written out literally, in float64: temperature, TopKLogitsWarper
 * (remove scores < the k-th largest), TopPLogitsWarper (sort ascending, remove where the cumulative
 * probability <= 1 - top_p, keep the largest token), then softmax. Returns p over the vocabulary.
 */
function hfReference(logits: number[], o: Required<SamplingOptions>): number[] {
  let s = logits.map((z) => z / o.temperature);
  if (o.topK > 0 && o.topK < s.length) {
    const kth = [...s].sort((a, b) => b - a)[o.topK - 1];
    s = s.map((v) => (v < kth ? -Infinity : v));
  }
  if (o.topP < 1) {
    const idx = s.map((_, i) => i).sort((a, b) => s[a] - s[b]);
    const sorted = idx.map((i) => s[i]);
    const p = softmax(sorted);
    let cum = 0;
    const remove = p.map((q) => (cum += q) <= 1 - o.topP);
    remove[remove.length - 1] = false;
    idx.forEach((i, j) => {
      if (remove[j]) s[i] = -Infinity;
    });
  }
  return softmax(s);
}

function softmax(x: number[]): number[] {
  const m = Math.max(...x);
  const e = x.map((v) => (v === -Infinity ? 0 : Math.exp(v - m)));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
}

/** Upper 0.1% points of the chi-square distribution, by degrees of freedom. */
const CHI2_999 = [NaN, 10.828, 13.816, 16.266, 18.467, 20.515, 22.458, 24.322, 26.124, 27.877, 29.588, 31.264];

function chiSquare(counts: number[], expected: number[], n: number): { stat: number; df: number } {
  let stat = 0, df = -1;
  for (let i = 0; i < counts.length; i++) {
    if (expected[i] === 0) continue;
    const e = expected[i] * n;
    stat += (counts[i] - e) ** 2 / e;
    df++;
  }
  return { stat, df };
}

const LOGITS = [2.1, -0.3, 1.7, 0.4, 3.0, -1.2, 0.9, 2.6, -2.0, 1.1, 0.0, 1.9];

Deno.test("argmax takes the first maximum; temperature 0 is greedy and draws no random number", () => {
  assert.equal(argmax([1, 5, 5, 2]), 1);
  assert.equal(argmax(new Float32Array([0, 1, 9, 9, 3]), 1, 3), 1); // row [1, 9, 9] → index 1
  const rng = new Rng(1);
  const before = rng.state();
  assert.equal(sampleToken(LOGITS, { temperature: 0 }, rng), 4);
  assert.deepEqual(rng.state(), before);
});

Deno.test("top-k keeps ties at the boundary; top-p keeps the smallest prefix reaching p, at least one", () => {
  assert.deepEqual([...candidates([3, 2, 2, 1], { topK: 2 }).ids].sort(), [0, 1, 2]);
  const logp = [Math.log(0.5), Math.log(0.3), Math.log(0.2)];
  assert.deepEqual([...candidates(logp, { topP: 0.45 }).ids], [0]);
  assert.deepEqual([...candidates(logp, { topP: 0.55 }).ids], [0, 1]);
  assert.deepEqual([...candidates(logp, { topP: 0.75 }).ids], [0, 1]);
  assert.deepEqual([...candidates(logp, { topP: 0.85 }).ids], [0, 1, 2]);
  assert.deepEqual([...candidates(logp, { topP: 1e-9 }).ids], [0]);
  const c = candidates(logp, { topP: 0.75 });
  assert.ok(Math.abs(c.probs[0] - 0.625) < 1e-12 && Math.abs(c.probs[1] - 0.375) < 1e-12);
  assert.throws(() => candidates(logp, { topP: 0 }), RangeError);
  assert.throws(() => candidates(logp, { temperature: -1 }), RangeError);
  assert.throws(() => candidates(logp, { topK: 1.5 }), RangeError);
});

Deno.test("candidates equal transformers' temperature → top-k → top-p warpers (property)", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: -400, max: 400 }), { minLength: 2, maxLength: 40 }),
      fc.constantFrom(0.3, 0.7, 1, 1.8),
      fc.integer({ min: 0, max: 45 }),
      fc.constantFrom(0.05, 0.3, 0.5, 0.77, 0.9, 0.99, 1),
      (ints, temperature, topK, topP) => {
        const logits = ints.map((v) => v / 37);
        const o = { temperature, topK, topP };
        const ref = hfReference(logits, o);
        const c = candidates(Float32Array.from(logits), o);
        const got = new Array(logits.length).fill(0);
        c.ids.forEach((id, i) => (got[id] = c.probs[i]));
        for (let i = 0; i < logits.length; i++) {
          assert.equal(got[i] > 0, ref[i] > 0, `support differs at ${i}`);
          // float32 logits vs float64 reference
          assert.ok(Math.abs(got[i] - ref[i]) < 1e-5, `p[${i}] ${got[i]} vs ${ref[i]}`);
        }
      },
    ),
    { numRuns: 300, seed: 42 },
  );
});

Deno.test("empirical frequencies match the truncated softmax (chi-square, alpha = 0.001), never outside the set", () => {
  const N = 20000;
  const configs: Required<SamplingOptions>[] = [
    { temperature: 0.7, topK: 0, topP: 1 },
    { temperature: 1.3, topK: 4, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.8 },
    { temperature: 0.9, topK: 6, topP: 0.9 },
  ];
  const logits = Float32Array.from(LOGITS);
  for (const [ci, o] of configs.entries()) {
    const rng = new Rng(1000 + ci);
    const counts = new Array(LOGITS.length).fill(0);
    for (let i = 0; i < N; i++) counts[sampleToken(logits, o, rng)]++;
    const expected = hfReference(LOGITS, o);
    for (let v = 0; v < LOGITS.length; v++) {
      if (expected[v] === 0) assert.equal(counts[v], 0, `config ${ci}: token ${v} is outside the set but was drawn`);
    }
    const { stat, df } = chiSquare(counts, expected, N);
    assert.ok(df >= 2, `config ${ci}: the test needs a set of at least 3 tokens`);
    assert.ok(stat < CHI2_999[df], `config ${ci}: chi-square ${stat.toFixed(2)} >= ${CHI2_999[df]} (df ${df})`);
    // The test has power: the same counts are far from the untruncated, untempered distribution.
    const wrong = softmax(LOGITS);
    const w = chiSquare(counts, wrong.map((p, i) => (expected[i] > 0 ? p : 0)), N);
    assert.ok(w.stat > 10 * CHI2_999[w.df], `config ${ci}: a wrong distribution passed (${w.stat.toFixed(1)})`);
  }
});

Deno.test("a seed reproduces the draws; another seed changes them", () => {
  const draw = (seed: number) => {
    const rng = new Rng(seed);
    return Array.from({ length: 50 }, () => sampleToken(LOGITS, { temperature: 1.5, topP: 0.95 }, rng));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});
