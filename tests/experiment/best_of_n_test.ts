import assert from "node:assert/strict";
import { bestOfN, bestOfNKl, expectedMaxOfN } from "../../src/experiment/best_of_n.ts";

/** E[max of N] by brute force: the mean of the maximum over every N-subset. */
function bruteForce(r: number[], n: number): number {
  let sum = 0, count = 0;
  const rec = (start: number, chosen: number[]) => {
    if (chosen.length === n) {
      sum += Math.max(...chosen);
      count++;
      return;
    }
    for (let i = start; i < r.length; i++) rec(i + 1, [...chosen, r[i]]);
  };
  rec(0, []);
  return sum / count;
}

Deno.test("expectedMaxOfN equals the mean maximum over every N-subset (ties included)", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  for (let trial = 0; trial < 20; trial++) {
    const m = 2 + (trial % 9);
    const r = Array.from({ length: m }, () => Math.round(rand() * 4) / 4); // coarse values: many ties
    for (let n = 1; n <= m; n++) {
      // Float64 sums of up to C(10, 5) = 252 terms: agreement to ~1e-15; 1e-12 is generous.
      assert.ok(Math.abs(expectedMaxOfN(r, n) - bruteForce(r, n)) < 1e-12, `m ${m} n ${n}`);
    }
  }
  const r = [0.3, -0.2, 0.9, 0.1];
  assert.ok(Math.abs(expectedMaxOfN(r, 1) - 0.275) < 1e-15); // N = 1: the mean
  assert.equal(expectedMaxOfN(r, 4), 0.9); // N = n: the maximum
  // 16 samples, as the experiment draws: the weights stay finite and sum to 1 (constant rewards).
  assert.ok(Math.abs(expectedMaxOfN(new Array(16).fill(0.5), 8) - 0.5) < 1e-12);
  assert.throws(() => expectedMaxOfN(r, 5), /at least 5 samples per prompt, got 4/);
});

Deno.test("Best-of-N KL bound log N - (N-1)/N and per-prompt points", () => {
  assert.equal(bestOfNKl(1), 0);
  assert.ok(Math.abs(bestOfNKl(2) - (Math.log(2) - 0.5)) < 1e-15);
  assert.ok(Math.abs(bestOfNKl(16) - 1.8350887222397811) < 1e-12);
  assert.throws(() => bestOfNKl(0), /integer N >= 1/);
  const pts = bestOfN([[0, 1], [1, 1]], [1, 2]);
  assert.deepEqual(pts.map((p) => p.n), [1, 2]);
  assert.equal(pts[0].reward.mean, 0.75); // prompt means 0.5 and 1
  assert.equal(pts[1].reward.mean, 1);
  assert.equal(pts[1].reward.se, 0);
  assert.equal(pts[0].reward.n, 2);
});
