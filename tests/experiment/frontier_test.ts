import assert from "node:assert/strict";
import { frontierAt, meanGap, paretoFront } from "../../src/experiment/frontier.ts";
import { clusteredMeanSe, meanSe, pooled } from "../../src/experiment/stats.ts";
import { compare, type RunResult, verdict } from "../../src/experiment/analysis.ts";

const P = (kl: number, reward: number) => ({ kl, reward });

Deno.test("paretoFront keeps the points no other point beats on both axes, in increasing KL", () => {
  const front = paretoFront([P(2, 0.5), P(0, 0.1), P(1, 0.6), P(3, 0.55), P(1, 0.2), P(4, 0.7)]);
  assert.deepEqual(front, [P(0, 0.1), P(1, 0.6), P(4, 0.7)]);
  assert.equal(frontierAt(front, -0.1), -Infinity);
  assert.equal(frontierAt(front, 0), 0.1);
  assert.equal(frontierAt(front, 0.99), 0.1);
  assert.equal(frontierAt(front, 1), 0.6);
  assert.equal(frontierAt(front, 10), 0.7);
});

Deno.test("meanGap integrates the two step frontiers exactly over the common KL range", () => {
  const a = [P(0, 0), P(1, 0.5), P(4, 0.6)];
  const b = [P(0, 0), P(2, 0.4), P(3, 0.45)];
  // κ_max = 3: on [0,1) 0−0, [1,2) 0.5−0, [2,3) 0.5−0.4 → area 0.6, mean 0.2.
  const g = meanGap(a, b)!;
  assert.equal(g.klMax, 3);
  assert.ok(Math.abs(g.gap - 0.2) < 1e-12);
  assert.ok(Math.abs(meanGap(b, a)!.gap + 0.2) < 1e-12);
  assert.equal(meanGap(a, a)!.gap, 0);
  assert.equal(meanGap([P(0, 0)], b), null); // nothing beyond KL 0 to compare
  assert.throws(() => meanGap([P(0.5, 0), P(1, 1)], b), /a point at KL <= 0/);
});

Deno.test("standard errors: plain, clustered by prompt, pooled", () => {
  const e = meanSe([1, 2, 3, 4]);
  assert.equal(e.mean, 2.5);
  assert.ok(Math.abs(e.se - Math.sqrt(5 / 3 / 4)) < 1e-15);
  assert.equal(meanSe([3]).se, 0);
  // Two prompts with two samples each: the prompt means are 1 and 3.
  const c = clusteredMeanSe([0, 2, 3, 3], [0, 0, 1, 1]);
  assert.equal(c.mean, 2);
  assert.equal(c.n, 2);
  assert.ok(Math.abs(c.se - 1) < 1e-15);
  const p = pooled([{ mean: 1, se: 0.3, n: 10 }, { mean: 2, se: 0.4, n: 10 }]);
  assert.equal(p.mean, 1.5);
  assert.ok(Math.abs(p.se - 0.25) < 1e-15);
  assert.throws(() => meanSe([]), /no values/);
});

function run(method: RunResult["method"], seed: number, pts: [number, number][]): RunResult {
  return {
    method,
    beta: 0.1,
    seed,
    dir: "",
    train: { steps: 1, seconds: 0, referenceSeconds: 0, tokensPerSecond: 0, finalLoss: 0 },
    checkpoints: pts.map(([kl, reward], i) => ({
      step: i + 1,
      kl: { mean: kl, se: 0, n: 1 },
      reward: { mean: reward, se: 0, n: 1 },
      samples: 1,
      prompts: 1,
      meanTokens: 1,
      eosFraction: 1,
      seconds: { generate: 0, score: 0, oracle: 0 },
    })),
  };
}

Deno.test("compare: per-seed gaps and the verdict over seeds", () => {
  const runs = [
    run("exo-pref", 0, [[1, 0.5], [2, 0.6]]),
    run("dpo-pref", 0, [[1, 0.3], [2, 0.4]]),
    run("exo-pref", 1, [[1, 0.45], [2, 0.7]]),
    run("dpo-pref", 1, [[1, 0.35], [2, 0.5]]),
  ];
  const [c] = compare(runs, [0, 1], 0.1);
  assert.equal(c.a, "exo-pref");
  assert.deepEqual(c.perSeed.map((s) => s.klMax), [2, 2]);
  // Seed 0: [0,1) 0, [1,2) 0.2 → 0.1; seed 1: [1,2) 0.1 → 0.05.
  assert.ok(Math.abs(c.perSeed[0].gap - 0.1) < 1e-12 && Math.abs(c.perSeed[1].gap - 0.05) < 1e-12);
  assert.equal(c.wins, 2);
  assert.match(c.verdict, /^EXO-pref dominates DPO-pref: \+0\.075 ± 0\.025, ahead in 2 of 2 seeds$/);
  assert.match(verdict("A", "B", { mean: 0.01, se: 0.02, n: 3 }, 2), /^no clear difference/);
  assert.match(verdict("A", "B", { mean: -0.1, se: 0.01, n: 3 }, 0), /^B dominates A/);
  assert.match(verdict("A", "B", null, 0), /no common KL range/);
});
