/**
 * The analytic float64 losses: PyTorch goldens, finite differences, invariants, TRL's exo_pair,
 * numerical stability and input checks.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { dpoPref, dpoRw, exoPref, exoRw, groupMetrics, pairMetrics } from "../../src/losses/mod.ts";
import {
  flat,
  GOLDEN_MODELS,
  groupsArb,
  type Hyper,
  hyperArb,
  maxAbsDiff,
  pairsArb,
  readFixtureRewards,
  readGoldenLosses,
  rewardArb,
  trlExoPair,
  uArb,
} from "./_cases.ts";

const RUNS = 200;

// Float64 goldens: the analytic losses agree to 8.9e-16 (a few ulps), held to 1e-14. Float32 goldens
// were computed in float32 by PyTorch; our float64 losses of the same float32 inputs differ from them
// by 5.7e-7 at most, the goldens' own float32 rounding, held to 1e-6.
Deno.test("analytic losses reproduce the PyTorch goldens (float64 to 1e-14, float32 to 1e-6)", () => {
  const rewards = readFixtureRewards();
  for (const model of GOLDEN_MODELS) {
    const g = readGoldenLosses(model);
    const h = g.hyperparams;
    assert.deepEqual(g.groups.map((x) => x.rewards), rewards, "rewards.jsonl matches the golden hyperparams");
    for (const [precision, tol] of [["float64", 1e-14], ["float32", 1e-6]] as const) {
      const blk = g[precision];
      const where = `${model} ${precision}`;
      const check = (
        name: string,
        got: { loss: number; perExample: Float64Array; pF: Float64Array[]; pR?: Float64Array[] },
        want: { loss: number; per_example: number[]; p_f: number[][]; p_r?: number[][] },
      ) => {
        assert.ok(Math.abs(got.loss - want.loss) <= tol, `${where} ${name} loss ${got.loss} vs ${want.loss}`);
        assert.ok(maxAbsDiff(got.perExample, want.per_example) <= tol, `${where} ${name} per_example`);
        assert.ok(maxAbsDiff(flat(got.pF), flat(want.p_f)) <= tol, `${where} ${name} p_f`);
        if (want.p_r) assert.ok(maxAbsDiff(flat(got.pR!), flat(want.p_r)) <= tol, `${where} ${name} p_r`);
      };
      const { chosen, rejected } = blk.u_pairs;
      check(
        "exo_pref",
        exoPref(chosen, rejected, { betaPi: h.exo_pref.beta_pi, eps: h.exo_pref.epsilon }),
        blk.exo_pref,
      );
      check("dpo_pref", dpoPref(chosen, rejected, { betaPi: h.dpo_pref.beta }), blk.dpo_pref);
      check("exo_rw", exoRw(blk.u_groups, rewards, { betaPi: h.exo_rw.beta_pi, betaR: h.exo_rw.beta_r }), blk.exo_rw);
      check("dpo_rw", dpoRw(blk.u_groups, rewards, { betaPi: h.dpo_rw.beta_pi, betaR: h.dpo_rw.beta_r }), blk.dpo_rw);
    }
  }
});

/** Central differences of f at x along every coordinate, step h. */
function centralDiff(f: (x: Float64Array) => number, x: Float64Array, h: number): Float64Array {
  return x.map((_, i) => {
    const p = x.slice(), m = x.slice();
    p[i] += h;
    m[i] -= h;
    return (f(p) - f(m)) / (2 * h);
  });
}

/** Rows of width k from a flat array. */
function rows(x: Float64Array, k: number): Float64Array[] {
  return Array.from({ length: x.length / k }, (_, b) => x.subarray(b * k, (b + 1) * k));
}

/**
 * Asserts |analytic − finite difference| ≤ tolerance. The step moves z = β_π u by 1e-5, so the
 * truncation error is ~1e-10 β_π and the rounding error ~1e-16 · loss · β_π / 1e-5.
 */
function assertMatchesFd(name: string, analytic: Float64Array, fd: Float64Array, betaPi: number, loss: number): void {
  const tol = 1e-7 * betaPi * (1 + loss);
  const err = maxAbsDiff(analytic, fd);
  assert.ok(err <= tol, `${name}: max |analytic - fd| = ${err} > ${tol}`);
}

Deno.test("analytic gradients match central finite differences of the analytic losses", () => {
  fc.assert(
    fc.property(groupsArb(), hyperArb, (c, h) => {
      const u = flat(c.u);
      const step = 1e-5 / h.betaPi;
      for (const [name, fn] of [["exoRw", exoRw], ["dpoRw", dpoRw]] as const) {
        const r = fn(c.u, c.rewards, h);
        const fd = centralDiff((x) => fn(rows(x, c.k), c.rewards, h).loss, u, step);
        assertMatchesFd(name, flat(r.grad), fd, h.betaPi, r.loss);
      }
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(pairsArb(), hyperArb, (c, h) => {
      const n = c.uw.length;
      const x = Float64Array.from([...c.uw, ...c.ul]);
      const step = 1e-5 / h.betaPi;
      for (const [name, fn] of [["exoPref", exoPref], ["dpoPref", dpoPref]] as const) {
        const r = fn(c.uw, c.ul, h);
        const fd = centralDiff((v) => fn(v.subarray(0, n), v.subarray(n), h).loss, x, step);
        assertMatchesFd(name, Float64Array.from([...r.gradChosen, ...r.gradRejected]), fd, h.betaPi, r.loss);
      }
    }),
    { numRuns: RUNS },
  );
});

/** KL(p ‖ q) of two distributions, and the total variation distance ½‖p − q‖₁. */
function tv(p: ArrayLike<number>, q: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += Math.abs(p[i] - q[i]);
  return s / 2;
}

function entropy(p: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) if (p[i] > 0) s -= p[i] * Math.log(p[i]);
  return s;
}

/**
 * The size of the terms that round in a group's gradient: K β_π (1 + ℓ + spread of β_π u + spread of
 * r / β_r), since |log p_f| and |log p_r| are at most those spreads (+ log K).
 */
function gradScale(h: Hyper, loss: number, u: readonly number[], r: readonly number[]): number {
  const span = (x: readonly number[]) => Math.max(...x) - Math.min(...x);
  return u.length * h.betaPi * (1 + Math.abs(loss) + h.betaPi * span(u) + span(r) / h.betaR + Math.log(u.length));
}

Deno.test("invariants: KL ≥ 2·TV² (Pinsker), cross-entropy ≥ H(p_r), gradients sum to 0 per group", () => {
  fc.assert(
    fc.property(groupsArb(), hyperArb, (c, h) => {
      const exo = exoRw(c.u, c.rewards, h);
      const dpo = dpoRw(c.u, c.rewards, h);
      for (let b = 0; b < c.b; b++) {
        // Pinsker: KL(p_f ‖ p_r) ≥ 2 TV(p_f, p_r)², so the loss is ≥ 0 and vanishes only where p_f = p_r.
        const d = tv(exo.pF[b], exo.pR[b]);
        assert.ok(exo.perExample[b] >= 2 * d * d - 1e-14, `Pinsker: ${exo.perExample[b]} < 2·${d}²`);
        // Cross-entropy = H(p_r) + KL(p_r ‖ p_f) ≥ H(p_r) + 2 TV².
        assert.ok(dpo.perExample[b] >= entropy(dpo.pR[b]) + 2 * d * d - 1e-12, "cross-entropy ≥ H(p_r) + 2 TV²");
        // Shift invariance: adding c to every u of a group changes nothing, so Σ_k ∂ℓ/∂u_k = 0 (up to
        // rounding of terms of size β_π p_f (|log p_f − log p_r| + ℓ), |log p_f| ≤ the spread of z).
        const tol = 1e-15 * gradScale(h, exo.perExample[b], c.u[b], c.rewards[b]);
        for (const [name, g] of [["exo", exo.grad[b]], ["dpo", dpo.grad[b]]] as const) {
          const sum = g.reduce((s, v) => s + v, 0);
          assert.ok(Math.abs(sum) <= tol, `${name} group ${b}: Σ grad = ${sum} (tolerance ${tol})`);
        }
      }
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(pairsArb(), hyperArb, (c, h) => {
      const exo = exoPref(c.uw, c.ul, h), dpo = dpoPref(c.uw, c.ul, h);
      exo.perExample.forEach((l, b) => {
        const d = tv(exo.pF[b], [1 - h.eps, h.eps]);
        assert.ok(l >= 2 * d * d - 1e-14, `EXO-pref Pinsker: ${l} < 2·${d}²`);
        const sum = exo.gradChosen[b] + exo.gradRejected[b];
        const zSpan = h.betaPi * Math.abs(c.uw[b] - c.ul[b]);
        const tol = 1e-15 * h.betaPi * (1 + l - Math.log(h.eps) + zSpan);
        assert.ok(Math.abs(sum) <= tol, `EXO-pref Σ grad = ${sum} (tolerance ${tol})`);
      });
      dpo.perExample.forEach((l, b) => {
        assert.ok(l > 0, `DPO-pref loss ${l} ≤ 0`);
        assert.equal(dpo.gradChosen[b], -dpo.gradRejected[b]);
      });
    }),
    { numRuns: RUNS },
  );
});

Deno.test("invariants: the EXO loss and gradient vanish exactly where p_f = p_r, and only there", () => {
  fc.assert(
    fc.property(groupsArb({ bMax: 2 }), hyperArb, uArb(5), (c, h, shift) => {
      // u chosen so that β_π u = r / β_r + shift: p_f = p_r up to rounding.
      const u = c.rewards.map((row) => row.map((r) => (r / h.betaR + shift) / h.betaPi));
      const at = exoRw(u, c.rewards, h);
      for (let b = 0; b < c.b; b++) {
        assert.ok(at.perExample[b] <= 1e-13, `loss at p_f = p_r: ${at.perExample[b]}`);
        for (const g of at.grad[b]) assert.ok(Math.abs(g) <= 1e-12 * h.betaPi, `gradient at p_f = p_r: ${g}`);
      }
      // Giving the most rewarded completion a logit 1 below all others makes p_f,top < 1/(1 + e(K − 1))
      // while p_r,top ≥ 1/K: TV ≥ 0.038 (K = 16), so the loss is clearly positive.
      const top = c.rewards[0].indexOf(Math.max(...c.rewards[0]));
      u[0][top] = Math.min(...u[0]) - 1 / h.betaPi;
      const away = exoRw(u, c.rewards, h).perExample[0];
      assert.ok(away > 2 * 0.038 ** 2, `loss away from p_f = p_r: ${away}`);
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(hyperArb, uArb(10), (h, ul) => {
      // EXO-pref: β_π (u_w − u_l) = log((1 − ε)/ε) gives p_f = (1 − ε, ε).
      const uw = ul + (Math.log1p(-h.eps) - Math.log(h.eps)) / h.betaPi;
      const r = exoPref([uw], [ul], h);
      assert.ok(r.loss <= 1e-13, `EXO-pref at its optimum: ${r.loss}`);
      assert.ok(Math.abs(r.gradChosen[0]) <= 1e-12 * h.betaPi, `EXO-pref gradient at its optimum: ${r.gradChosen[0]}`);
    }),
    { numRuns: RUNS },
  );
});

Deno.test("invariants: permuting completions permutes p_f, p_r and gradients and keeps the loss", () => {
  fc.assert(
    fc.property(
      groupsArb({ bMax: 2 }).chain((c) =>
        fc.record({ c: fc.constant(c), perm: fc.shuffledSubarray([...Array(c.k).keys()], { minLength: c.k }) })
      ),
      hyperArb,
      ({ c, perm }, h) => {
        const u2 = c.u.map((row) => perm.map((i) => row[i]));
        const r2 = c.rewards.map((row) => perm.map((i) => row[i]));
        for (const fn of [exoRw, dpoRw]) {
          const a = fn(c.u, c.rewards, h), p = fn(u2, r2, h);
          assert.ok(Math.abs(a.loss - p.loss) <= 1e-12 * (1 + a.loss), `${fn.name} loss ${a.loss} vs ${p.loss}`);
          for (let b = 0; b < c.b; b++) {
            const back = (x: Float64Array) => perm.map((i) => x[i]);
            const tol = 1e-15 * gradScale(h, a.perExample[b], c.u[b], c.rewards[b]);
            assert.ok(maxAbsDiff(back(a.grad[b]), p.grad[b]) <= tol, `${fn.name} grad`);
            assert.ok(maxAbsDiff(back(a.pF[b]), p.pF[b]) <= 1e-14, `${fn.name} p_f`);
            assert.ok(maxAbsDiff(back(a.pR[b]), p.pR[b]) <= 1e-14, `${fn.name} p_r`);
          }
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("EXO-rw with K = 2 and r_w − r_l = β_r log((1 − ε)/ε) equals EXO-pref; EXO-pref equals TRL's exo_pair", () => {
  fc.assert(
    fc.property(pairsArb(), hyperArb, rewardArb, (c, h, r0) => {
      const pref = exoPref(c.uw, c.ul, h);
      const gap = h.betaR * (Math.log1p(-h.eps) - Math.log(h.eps));
      const rw = exoRw(c.uw.map((w, b) => [w, c.ul[b]]), c.uw.map(() => [r0 + gap, r0]), h);
      const scale = 1 + pref.loss;
      assert.ok(Math.abs(rw.loss - pref.loss) <= 1e-9 * scale, `rw ${rw.loss} vs pref ${pref.loss}`);
      assert.ok(maxAbsDiff(rw.grad.map((g) => g[0]), pref.gradChosen) <= 1e-9 * h.betaPi * scale, "grad chosen");
      assert.ok(maxAbsDiff(rw.grad.map((g) => g[1]), pref.gradRejected) <= 1e-9 * h.betaPi * scale, "grad rejected");
      pref.perExample.forEach((l, b) => {
        const trl = trlExoPair(c.uw[b], c.ul[b], h.betaPi, h.eps);
        // TRL writes log(1 − ε) where we write log1p(−ε): they differ by ≤ 1e-16 absolute.
        assert.ok(Math.abs(l - trl) <= 1e-12 * (1 + Math.abs(trl)), `exo_pair ${trl} vs ${l}`);
      });
    }),
    { numRuns: RUNS },
  );
});

Deno.test("DPO-pref is −log σ(β d), and DPO-rw with a one-hot target reduces to it", () => {
  fc.assert(
    fc.property(pairsArb({ range: 20 }), hyperArb, (c, h) => {
      const pref = dpoPref(c.uw, c.ul, h);
      // r_w − r_l = 800 β_r makes p_r = (1, e^-800) = (1, 0) in float64.
      const rw = dpoRw(c.uw.map((w, b) => [w, c.ul[b]]), c.uw.map(() => [800 * h.betaR, 0]), h);
      pref.perExample.forEach((l, b) => {
        const d = h.betaPi * (c.uw[b] - c.ul[b]);
        const direct = -Math.log(1 / (1 + Math.exp(-d)));
        assert.ok(Math.abs(l - direct) <= 1e-12 * (1 + direct), `softplus ${l} vs −log σ ${direct}`);
        assert.ok(Math.abs(rw.perExample[b] - l) <= 1e-12 * (1 + l), `dpo_rw ${rw.perExample[b]} vs dpo_pref ${l}`);
        assert.ok(Math.abs(rw.grad[b][0] - pref.gradChosen[b]) <= 1e-13, "grad chosen");
      });
    }),
    { numRuns: RUNS },
  );
});

Deno.test("stability: |β_π u| up to 1e4, ε down to 1e-12 and tied rewards give finite losses and gradients", () => {
  const big = fc.double({ min: -1e4, max: 1e4, noNaN: true });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(big, big), { minLength: 1, maxLength: 4 }),
      fc.constantFrom(1e-12, 1e-6, 1e-3),
      fc.constantFrom(1, 0.1),
      fc.integer({ min: 2, max: 8 }),
      (zs, eps, betaPi, k) => {
        const uw = zs.map((p) => p[0] / betaPi), ul = zs.map((p) => p[1] / betaPi);
        for (const r of [exoPref(uw, ul, { betaPi, eps }), dpoPref(uw, ul, { betaPi })]) {
          for (const v of [r.loss, ...r.perExample, ...r.gradChosen, ...r.gradRejected]) assert.ok(Number.isFinite(v));
        }
        // Groups: the pair values spread over K completions, all rewards tied or one far ahead.
        const u = zs.map((p) => Array.from({ length: k }, (_, i) => (i % 2 ? p[0] : p[1]) / betaPi));
        for (const rewards of [zs.map(() => Array(k).fill(0.5)), zs.map(() => [1e4, ...Array(k - 1).fill(-1e4)])]) {
          for (const r of [exoRw(u, rewards, { betaPi, betaR: 0.01 }), dpoRw(u, rewards, { betaPi, betaR: 0.01 })]) {
            for (const v of [r.loss, ...r.perExample, ...flat(r.grad)]) assert.ok(Number.isFinite(v), `${v}`);
          }
        }
      },
    ),
    { numRuns: RUNS },
  );
  // Extremes by hand: the loss saturates at the right values.
  const eps = 1e-12;
  const wrong = exoPref([-1e5], [1e5], { betaPi: 0.1, eps });
  assert.ok(Math.abs(wrong.loss - -Math.log(eps)) < 1e-9, `p_f = (0, 1): loss = −log ε, got ${wrong.loss}`);
  const right = exoPref([1e5], [-1e5], { betaPi: 0.1, eps });
  assert.ok(Math.abs(right.loss - -Math.log1p(-eps)) < 1e-15, `p_f = (1, 0): loss = −log(1 − ε), got ${right.loss}`);
  assert.ok(Math.abs(dpoPref([-1e5], [1e5], { betaPi: 0.1 }).loss - 2e4) < 1e-9, "DPO: loss = β |d|");
});

Deno.test("metrics: TRL's pairwise metrics and their K-completion analogues", () => {
  const m = pairMetrics(
    { uChosen: [1, -2, 0.5], uRejected: [0, 1, 0.5], logpChosen: [-10, -20, -30], logpRejected: [-5, -6, -7] },
    { betaPi: 0.5 },
  );
  assert.deepEqual(m, {
    "rewards/chosen": (0.5 - 1 + 0.25) / 3,
    "rewards/rejected": (0 + 0.5 + 0.25) / 3,
    "rewards/accuracies": 1 / 3, // the tie counts as wrong, as TRL's strict >
    "rewards/margins": (0.5 - 1.5 + 0) / 3,
    "logps/chosen": -20,
    "logps/rejected": -6,
  });
  const g = groupMetrics(
    { u: [[1, 3, 2], [0, 0, -1]], rewards: [[0, 1, 1], [2, 5, 1]], logp: [[-1, -2, -3], [-4, -5, -6]] },
    { betaPi: 1 },
  );
  const pf = (z: number[], i: number) => Math.exp(z[i]) / z.reduce((s, v) => s + Math.exp(v), 0);
  const ent = (z: number[]) => -z.reduce((s, _, i) => s + pf(z, i) * Math.log(pf(z, i)), 0);
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-14, `${what}: ${a} vs ${b}`);
  close(g["rewards/mean"], (2 + -1 / 3) / 2, "rewards/mean");
  close(g["rewards/top"], (3 + 0) / 2, "rewards/top: first of the tied top rewards, then index 1");
  close(g["rewards/margins"], ((3 - 1.5) + (0 - -0.5)) / 2, "rewards/margins");
  close(g["rewards/accuracies"], 0.5, "argmax βu = argmax r in group 0 only (group 1: first max of u is index 0)");
  close(g["logps/mean"], -3.5, "logps/mean");
  close(g["logps/top"], (-2 + -5) / 2, "logps/top");
  close(g["p_f/top"], (pf([1, 3, 2], 1) + pf([0, 0, -1], 1)) / 2, "p_f/top");
  close(g["p_f/entropy"], (ent([1, 3, 2]) + ent([0, 0, -1])) / 2, "p_f/entropy");
  // K = 2 with distinct rewards and log-ratios: the group metrics agree with the pairwise ones.
  fc.assert(
    fc.property(pairsArb(), logUniformBeta(), (c, betaPi) => {
      fc.pre(c.uw.every((w, b) => betaPi * w !== betaPi * c.ul[b]));
      const logpW = c.uw.map((x) => x - 5), logpL = c.ul.map((x) => x - 7);
      const p = pairMetrics({ uChosen: c.uw, uRejected: c.ul, logpChosen: logpW, logpRejected: logpL }, { betaPi });
      const q = groupMetrics({
        u: c.uw.map((w, b) => [c.ul[b], w]), // chosen second: "top" follows the rewards, not the position
        rewards: c.uw.map(() => [0, 1]),
        logp: logpW.map((w, b) => [logpL[b], w]),
      }, { betaPi });
      close(q["rewards/top"], p["rewards/chosen"], "top = chosen");
      assert.ok(Math.abs(q["rewards/margins"] - p["rewards/margins"]) < 1e-12, "margins");
      close(q["rewards/accuracies"], p["rewards/accuracies"], "accuracies");
      close(q["logps/top"], p["logps/chosen"], "logps");
    }),
    { numRuns: RUNS },
  );
});

function logUniformBeta() {
  return fc.double({ min: Math.log(0.01), max: Math.log(5), noNaN: true }).map(Math.exp);
}

Deno.test("inputs are checked: bad hyper-parameters, shapes and values fail with a message", () => {
  assert.throws(() => exoPref([0], [0], { eps: 0 }), /eps must lie strictly between 0 and 1/);
  assert.throws(() => exoPref([0], [0], { eps: 1 }), /eps must lie/);
  assert.throws(() => exoPref([0], [0], { betaPi: -1 }), /betaPi must be a positive/);
  assert.throws(() => exoRw([[0, 1]], [[0, 1]], { betaR: 0 }), /betaR must be a positive/);
  assert.throws(() => dpoPref([0, 1], [0], {}), /same length/);
  assert.throws(() => dpoPref([], [], {}), /empty/);
  assert.throws(() => exoRw([[0]], [[1]]), /at least 2/);
  assert.throws(() => dpoRw([[0, 1]], [[1, 2, 3]]), /2 log-ratios but 3 rewards/);
  assert.throws(() => exoRw([[0, NaN]], [[1, 2]]), /u\[0\]\[1\] must be finite/);
});
