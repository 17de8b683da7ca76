/**
 * The saturated regime, |β_π u| from 40 to 1e4, where p_f is one-hot to within e^-40: the gradients
 * are compared with their closed-form limits, not only checked for finiteness. Both branches of the
 * emitters are run: β and ε as graph inputs (the property tests' graphs) and as constants (as
 * training builds them; EXO-pref then takes log1p(−ε) and log ε from JS instead of Log(1 − ε)).
 *
 * Closed forms, with s = |d| ≥ 40 the margin, a = log(1 − ε), b = log ε, n pairs or groups:
 * - DPO-pref: ∂ℓ/∂u_w = −(β/n) σ(−d) exactly.
 * - EXO-pref: ∂ℓ/∂u_w = (β/n) e^−s (s + b − a) when d = +s (the policy agrees with the label), and
 *   −(β/n) e^−s (s + a − b) when d = −s; ∂ℓ/∂u_l = −∂ℓ/∂u_w. Up to a relative O(s e^−s).
 * - groups whose top completion leads every other by g_j ≥ 100 in z = β u, with p_r = softmax(r / β_r)
 *   and |r / β_r| ≤ 30: DPO-rw: ∂ℓ/∂u_j = (β/n)([j = top] − p_r,j); EXO-rw: ∂ℓ/∂u_j =
 *   (β/n) e^−g_j (log p_r,top − log p_r,j − g_j) for j ≠ top, and minus their sum for the top one.
 *   Both up to a relative O(K e^−40): the gap of 100 keeps p_f,j below p_r,j e^−40 and the bracket
 *   away from 0 (it is ≤ −40). DPO-rw's entries are differences of probabilities, so they are held
 *   to an absolute 1e-14 β/n (1 − p_r,top cancels when p_r,top is near 1; measured 1.4e-15 β/n).
 * These follow from p_minor = e^−s(1 + O(e^−s)) and ℓ_EXO = −log p_r,top + O(s e^−s). Entries below
 * 1e-300 are compared absolutely (e^−s is subnormal there, with few bits left).
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { dpoPref, dpoRw, exoPref, exoRw } from "../../src/losses/mod.ts";
import { flat, type Hyper, logUniform, maxAbsDiff } from "./_cases.ts";
import { type HyperMode, type LossFeeds, releaseSessions, runLosses } from "./_graph.ts";

const SYMBOLIC = { b: "B", k: "K", p: "P" };
/** A few hyper-parameter sets (each is its own graph when they are constants). */
const HYPERS: Hyper[] = [
  { betaPi: 0.1, betaR: 0.1, eps: 1e-3 },
  { betaPi: 1, betaR: 0.01, eps: 1e-12 },
  { betaPi: 5, betaR: 2, eps: 0.4 },
];

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
function logSoftmax(x: number[]): number[] {
  const m = Math.max(...x);
  const lse = m + Math.log(x.reduce((s, v) => s + Math.exp(v - m), 0));
  return x.map((v) => v - lse);
}

/** The closed-form pair gradients ∂ℓ/∂u_w (∂ℓ/∂u_l is minus these). */
function pairLimits(d: number[], h: Hyper): { dpo: number[]; exo: number[] } {
  const n = d.length, a = Math.log1p(-h.eps), b = Math.log(h.eps);
  return {
    dpo: d.map((x) => (-h.betaPi / n) * sigmoid(-x)),
    exo: d.map((x) => {
      const s = Math.abs(x);
      return x > 0 ? (h.betaPi / n) * Math.exp(-s) * (s + b - a) : (-h.betaPi / n) * Math.exp(-s) * (s + a - b);
    }),
  };
}

/** The closed-form group gradients; `gaps[b][j]` = z_top − z_j (0 at the top), `top[b]` its index. */
function groupLimits(gaps: number[][], top: number[], rewards: number[][], h: Hyper) {
  const n = gaps.length;
  const dpo: number[][] = [], exo: number[][] = [];
  gaps.forEach((g, i) => {
    const lpr = logSoftmax(rewards[i].map((r) => r / h.betaR));
    dpo.push(lpr.map((l, j) => (h.betaPi / n) * ((j === top[i] ? 1 : 0) - Math.exp(l))));
    const row = g.map((gap, j) => (j === top[i] ? 0 : (h.betaPi / n) * Math.exp(-gap) * (lpr[top[i]] - lpr[j] - gap)));
    row[top[i]] = -row.reduce((s, v) => s + v, 0);
    exo.push(row);
  });
  return { dpo, exo };
}

/**
 * |got − want| ≤ rel |want| + abs for every entry. `abs` covers the subnormal range, where e^−s
 * (s up to 745) keeps only a few bits.
 */
function assertNear(name: string, got: ArrayLike<number>, want: ArrayLike<number>, rel: number, abs: number): number {
  assert.equal(got.length, want.length, name);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    assert.ok(
      Number.isFinite(got[i]) && err <= rel * Math.abs(want[i]) + abs,
      `${name}[${i}]: ${got[i]} vs ${want[i]}`,
    );
    if (Math.abs(want[i]) > 1e-290) worst = Math.max(worst, err / Math.abs(want[i]) / (rel || 1));
  }
  return worst;
}

/**
 * Relative tolerance of a case. The limits themselves are off by O(s e^−s) ≤ 1e-15; what dominates is
 * the rounding of z = β u (~2.2e-16 s absolute, two roundings), which e^−s turns into a relative
 * 2.2e-16 s: measured at most 1.5e-16 (1 + s), held to 2e-15 (1 + s) for the largest s of the case
 * below the underflow (745).
 */
function relTol(d: number[], groups: { gaps: number[] }[]): number {
  const s = Math.max(...d.map(Math.abs), ...groups.flatMap((g) => g.gaps));
  return 2e-15 * (1 + Math.min(s, 745));
}

/** Margins s in [40, 1e4], log-uniform, either sign. */
const margin = fc.tuple(logUniform(40, 1e4), fc.boolean()).map(([s, pos]) => (pos ? s : -s));

/** A saturated case: pairs with margins d, groups whose top completion leads by gaps ≥ 40. */
const caseArb = fc.record({
  d: fc.array(margin, { minLength: 1, maxLength: 3 }),
  groups: fc.integer({ min: 2, max: 5 }).chain((k) =>
    fc.array(
      fc.record({
        top: fc.integer({ min: 0, max: k - 1 }),
        lead: fc.double({ min: -50, max: 50, noNaN: true }),
        gaps: fc.array(logUniform(100, 1e4), { minLength: k, maxLength: k }),
        /** r / β_r. */
        scaled: fc.array(fc.double({ min: -30, max: 30, noNaN: true }), { minLength: k, maxLength: k }),
      }),
      { minLength: 1, maxLength: 3 },
    )
  ),
  hyper: fc.constantFrom(...HYPERS),
});

Deno.test("saturated regime: the analytic gradients equal their closed-form limits", () => {
  let worst = 0, worstAbs = 0;
  fc.assert(
    fc.property(caseArb, ({ d, groups, hyper: h }) => {
      const uw = d.map((x) => x / h.betaPi), ul = d.map(() => 0);
      const lim = pairLimits(d, h);
      const rel = relTol(d, groups);
      worst = Math.max(worst, assertNear("dpo_pref", dpoPref(uw, ul, h).gradChosen, lim.dpo, rel, 1e-300));
      const exo = exoPref(uw, ul, h);
      worst = Math.max(worst, assertNear("exo_pref", exo.gradChosen, lim.exo, rel, 1e-300));
      assertNear("exo_pref rejected", exo.gradRejected, lim.exo.map((x) => -x), rel, 1e-300);
      const { u, rewards, gaps, top } = groupCase(groups, h);
      const gl = groupLimits(gaps, top, rewards, h);
      const scale = h.betaPi / groups.length;
      const got = flat(dpoRw(u, rewards, h).grad);
      assertNear("dpo_rw", got, gl.dpo.flat(), 0, 1e-14 * scale);
      worstAbs = Math.max(worstAbs, maxAbsDiff(got, gl.dpo.flat()) / scale);
      worst = Math.max(worst, assertNear("exo_rw", flat(exoRw(u, rewards, h).grad), gl.exo.flat(), rel, 1e-300));
    }),
    { numRuns: 300 },
  );
  console.log(`  worst error ${worst.toExponential(2)} of the bound; DPO-rw ${worstAbs.toExponential(2)} of β/n`);
});

/** The u and rewards of a group case: z_top = lead, z_j = lead − gap_j. */
function groupCase(groups: { top: number; lead: number; gaps: number[]; scaled: number[] }[], h: Hyper) {
  const gaps = groups.map((g) => g.gaps.map((x, j) => (j === g.top ? 0 : x)));
  return {
    u: groups.map((g, i) => gaps[i].map((x) => (g.lead - x) / h.betaPi)),
    rewards: groups.map((g) => g.scaled.map((x) => x * h.betaR)),
    gaps,
    top: groups.map((g) => g.top),
  };
}

for (const mode of ["inputs", "constants"] as HyperMode[]) {
  Deno.test(`saturated regime, β and ε as ${mode} (wasm, float64): graph gradients equal the closed forms`, async () => {
    let worst = 0, worstAbs = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ d, groups, hyper: h }) => {
        const uw = d.map((x) => x / h.betaPi), ul = d.map(() => 0);
        const { u, rewards, gaps, top } = groupCase(groups, h);
        // The graph takes [B, K] groups of one K: keep the first K of every group.
        const f: LossFeeds = { u, rewards, uw, ul, hyper: h };
        const out = await runLosses("wasm", "float64", f, SYMBOLIC, mode);
        const lim = pairLimits(d, h);
        const gl = groupLimits(gaps, top, rewards, h);
        const rel = relTol(d, groups);
        worst = Math.max(worst, assertNear("dpo_pref", out["dpo_pref.grad_chosen"], lim.dpo, rel, 1e-300));
        worst = Math.max(worst, assertNear("exo_pref", out["exo_pref.grad_chosen"], lim.exo, rel, 1e-300));
        assertNear("exo_pref rejected", out["exo_pref.grad_rejected"], lim.exo.map((x) => -x), rel, 1e-300);
        const scale = h.betaPi / groups.length;
        assertNear("dpo_rw", out["dpo_rw.grad"], gl.dpo.flat(), 0, 1e-14 * scale);
        worstAbs = Math.max(worstAbs, maxAbsDiff(out["dpo_rw.grad"], gl.dpo.flat()) / scale);
        worst = Math.max(worst, assertNear("exo_rw", out["exo_rw.grad"], gl.exo.flat(), rel, 1e-300));
        // The losses too: relative to their size (EXO-pref's is ~s when the policy disagrees).
        const a = exoPref(uw, ul, h);
        assertNear("exo_pref.per_example", out["exo_pref.per_example"], a.perExample, 1e-13, 1e-13);
      }),
      { numRuns: mode === "constants" ? 40 : 100 },
    );
    console.log(`  worst error ${worst.toExponential(2)} of the bound; DPO-rw ${worstAbs.toExponential(2)} of β/n`);
  });
}

Deno.test("release the cached loss sessions", async () => {
  await releaseSessions();
});
