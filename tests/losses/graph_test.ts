/**
 * The loss emitters, run by ORT on the wasm backend in float64: forward values and gradients
 * (through `backward()` of src/autodiff) against the analytic float64 losses, the PyTorch goldens,
 * stability extremes, metrics and input checks.
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Graph } from "../../src/onnx/graph.ts";
import {
  dpoPref,
  dpoRw,
  emitDpoRw,
  emitExoPref,
  emitExoRw,
  emitGroupMetrics,
  exoPref,
  exoRw,
  groupMetrics,
  pairMetrics,
} from "../../src/losses/mod.ts";
import {
  flat,
  GOLDEN_MODELS,
  groupsArb,
  hyperArb,
  maxAbsDiff,
  pairsArb,
  readFixtureRewards,
  readGoldenLosses,
  uArb,
} from "./_cases.ts";
import { type HyperMode, type LossFeeds, type LossShape, releaseSessions, runLosses } from "./_graph.ts";

const RUNS = 200;
const SYMBOLIC: LossShape = { b: "B", k: "K", p: "P" };

/**
 * Asserts that graph outputs equal the analytic losses: loss, per-example, p_f, p_r, gradients.
 * `tol` is relative to 1 + the largest |β_π u| + the largest |r / β_r| (rounding of the logits dominates).
 */
function assertGraphMatchesAnalytic(out: Record<string, Float64Array>, f: LossFeeds, tol: number): void {
  const h = f.hyper;
  const zmax = Math.max(...f.u.flat().map(Math.abs), ...f.uw.map(Math.abs), ...f.ul.map(Math.abs)) * h.betaPi +
    Math.max(...f.rewards.flat().map(Math.abs)) / h.betaR;
  const close = (name: string, got: ArrayLike<number>, want: ArrayLike<number>, scale = 1) => {
    const err = maxAbsDiff(got, want);
    const bound = tol * scale * (1 + zmax);
    assert.ok(err <= bound, `${name}: max |graph - analytic| = ${err} > ${bound}`);
  };
  for (const [name, fn] of [["exo_pref", exoPref], ["dpo_pref", dpoPref]] as const) {
    const a = fn(f.uw, f.ul, h);
    close(`${name}.loss`, out[`${name}.loss`], [a.loss]);
    close(`${name}.per_example`, out[`${name}.per_example`], a.perExample);
    close(`${name}.grad_chosen`, out[`${name}.grad_chosen`], a.gradChosen, h.betaPi);
    close(`${name}.grad_rejected`, out[`${name}.grad_rejected`], a.gradRejected, h.betaPi);
  }
  for (const [name, fn] of [["exo_rw", exoRw], ["dpo_rw", dpoRw]] as const) {
    const a = fn(f.u, f.rewards, h);
    close(`${name}.loss`, out[`${name}.loss`], [a.loss]);
    close(`${name}.per_example`, out[`${name}.per_example`], a.perExample);
    close(`${name}.p_f`, out[`${name}.p_f`], flat(a.pF));
    close(`${name}.p_r`, out[`${name}.p_r`], flat(a.pR));
    close(`${name}.grad`, out[`${name}.grad`], flat(a.grad), h.betaPi);
  }
}

/** Feeds from a group case, a pair case and hyper-parameters. */
function feeds(
  c: { u: number[][]; rewards: number[][] },
  p: { uw: number[]; ul: number[] },
  hyper: LossFeeds["hyper"],
) {
  return { u: c.u, rewards: c.rewards, uw: p.uw, ul: p.ul, hyper };
}

Deno.test("graph (wasm, float64): losses and backward() gradients equal the analytic ones", async () => {
  await fc.assert(
    fc.asyncProperty(groupsArb(), pairsArb(), hyperArb, async (c, p, h) => {
      const f = feeds(c, p, h);
      assertGraphMatchesAnalytic(await runLosses("wasm", "float64", f, SYMBOLIC), f, 1e-12);
    }),
    { numRuns: RUNS },
  );
  // Static shapes (as training compiles them), a few of them.
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom([1, 2], [2, 5], [3, 16]).chain(([b, k]) => groupsArb({ bMin: b, bMax: b, kMin: k, kMax: k })),
      hyperArb,
      async (c, h) => {
        const p = { uw: c.u.map((r) => r[0]), ul: c.u.map((r) => r[1]) };
        const f = feeds(c, p, h);
        assertGraphMatchesAnalytic(await runLosses("wasm", "float64", f, { b: c.b, k: c.k, p: c.b }), f, 1e-12);
      },
    ),
    { numRuns: 30 },
  );
});

// The float64 graph agrees with the float64 goldens to 8.9e-16 (a few ulps): held to 1e-14.
// Training passes β_π, β_r and ε to the emitters as numbers, which folds them into the graph as
// constants and takes EXO-pref's other branch (log1p(−ε), log ε from JS rather than Log(1 − ε) in the
// graph). Each distinct value is a session of its own, so the hyper-parameters come from a few sets.
Deno.test("graph (wasm, float64): β and ε as constants, as training passes them, equal the analytic losses", async () => {
  const sets = [
    { betaPi: 0.1, betaR: 0.1, eps: 1e-3 },
    { betaPi: 0.01, betaR: 5, eps: 0.5 },
    { betaPi: 5, betaR: 0.01, eps: 1e-12 },
    { betaPi: 0.7, betaR: 0.3, eps: 0.05 },
  ];
  await fc.assert(
    fc.asyncProperty(groupsArb(), pairsArb(), fc.constantFrom(...sets), async (c, p, h) => {
      const f = feeds(c, p, h);
      assertGraphMatchesAnalytic(await runLosses("wasm", "float64", f, SYMBOLIC, "constants"), f, 1e-12);
    }),
    { numRuns: 60 },
  );
});

Deno.test("graph (wasm, float64): the PyTorch goldens to 1e-14", async () => {
  const rewards = readFixtureRewards();
  for (const model of GOLDEN_MODELS) {
    const g = readGoldenLosses(model);
    const blk = g.float64, hp = g.hyperparams;
    // The goldens use the same β everywhere except ε, which only EXO-pref reads.
    const hyper = { betaPi: hp.exo_pref.beta_pi, betaR: hp.exo_rw.beta_r, eps: hp.exo_pref.epsilon };
    for (const b of [hp.dpo_pref.beta, hp.exo_rw.beta_pi, hp.dpo_rw.beta_pi]) assert.equal(b, hyper.betaPi);
    assert.equal(hp.dpo_rw.beta_r, hyper.betaR);
    const f = feeds({ u: blk.u_groups, rewards }, { uw: blk.u_pairs.chosen, ul: blk.u_pairs.rejected }, hyper);
    const out = await runLosses("wasm", "float64", f, { b: 2, k: 4, p: 3 });
    for (const name of ["exo_pref", "dpo_pref", "exo_rw", "dpo_rw"] as const) {
      const want = blk[name];
      assert.ok(Math.abs(out[`${name}.loss`][0] - want.loss) < 1e-14, `${model} ${name}.loss`);
      assert.ok(maxAbsDiff(out[`${name}.per_example`], want.per_example) < 1e-14, `${model} ${name}.per_example`);
      if (name === "exo_rw" || name === "dpo_rw") {
        assert.ok(maxAbsDiff(out[`${name}.p_f`], flat(blk[name].p_f)) < 1e-14, `${model} ${name}.p_f`);
        assert.ok(maxAbsDiff(out[`${name}.p_r`], flat(blk[name].p_r)) < 1e-14, `${model} ${name}.p_r`);
      }
    }
  }
});

for (const mode of ["inputs", "constants"] as HyperMode[]) {
  Deno.test(`graph (wasm, float64, β and ε as ${mode}): |β_π u| up to 1e4, ε = 1e-12 and tied rewards stay finite and exact`, async () => {
    const big = fc.double({ min: -1e4, max: 1e4, noNaN: true });
    let worstSaturated = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(big, big), { minLength: 1, maxLength: 3 }),
        fc.constantFrom(1e-12, 1e-3),
        fc.constantFrom(1, 0.1),
        fc.integer({ min: 2, max: 6 }),
        fc.boolean(),
        async (zs, eps, betaPi, k, tied) => {
          const uw = zs.map((z) => z[0] / betaPi), ul = zs.map((z) => z[1] / betaPi);
          const u = zs.map((z) => Array.from({ length: k }, (_, i) => z[i % 2] / betaPi));
          const rewards = zs.map(() => Array.from({ length: k }, (_, i) => (tied ? 0.5 : i === 0 ? 1e3 : -1e3)));
          const f = { u, rewards, uw, ul, hyper: { betaPi, betaR: 0.01, eps } };
          const out = await runLosses("wasm", "float64", f, SYMBOLIC, mode);
          for (const [name, v] of Object.entries(out)) {
            assert.ok(v.length > 0 && v.every(Number.isFinite), `${name} is not finite: ${v}`);
          }
          assertGraphMatchesAnalytic(out, f, 1e-12);
          // The gradients stay O(β/n) as |β u| grows (p_f saturates); EXO's scale with the target's
          // log-probabilities (|log ε| for pairs, the spread of r / β_r, here 2e5, for groups), and a
          // difference u_w − u_l of moderate size taken between large u's carries the rounding of
          // |β u|. So they are held to 2e-15 β/n (1 + target scale + max |β u|) absolute, 10x the
          // worst measured (1.7e-16), where assertGraphMatchesAnalytic's bound (1e-12 (1 + |β u| +
          // |r/β_r|)) would let a wrong saturated gradient through.
          // (tests/losses/saturation_test.ts checks them against their closed-form limits.)
          const n = uw.length, gb = u.length;
          const zPairs = Math.max(...uw.map(Math.abs), ...ul.map(Math.abs)) * betaPi;
          const zGroups = Math.max(...u.flat().map(Math.abs)) * betaPi;
          const pairScale = 1 + Math.abs(Math.log(eps)) + zPairs;
          const groupScale = 1 + (Math.max(...rewards.flat()) - Math.min(...rewards.flat())) / 0.01 + zGroups;
          const check = (name: string, got: Float64Array, want: ArrayLike<number>, bound: number) => {
            const err = maxAbsDiff(got, want);
            worstSaturated = Math.max(worstSaturated, err / bound);
            assert.ok(err <= 2e-15 * bound, `${name}: ${err} > ${2e-15 * bound}`);
          };
          for (const [name, fn] of [["exo_pref", exoPref], ["dpo_pref", dpoPref]] as const) {
            const a = fn(uw, ul, f.hyper);
            check(`${name}.grad_chosen`, out[`${name}.grad_chosen`], a.gradChosen, (betaPi / n) * pairScale);
            check(`${name}.grad_rejected`, out[`${name}.grad_rejected`], a.gradRejected, (betaPi / n) * pairScale);
          }
          for (const [name, fn] of [["exo_rw", exoRw], ["dpo_rw", dpoRw]] as const) {
            check(`${name}.grad`, out[`${name}.grad`], flat(fn(u, rewards, f.hyper).grad), (betaPi / gb) * groupScale);
          }
        },
      ),
      { numRuns: mode === "constants" ? 60 : RUNS },
    );
    console.log(`  worst saturated gradient error: ${worstSaturated.toExponential(2)} of β/n (1 + scale)`);
  });
}

Deno.test("graph (wasm, float64): the emitted metrics equal the analytic ones, ties included", async () => {
  // Log-ratios on a coarse grid so that ties in β u (the argmax of p_f) occur often.
  const gridU = fc.oneof(uArb(5), fc.integer({ min: -2, max: 2 }));
  await fc.assert(
    fc.asyncProperty(
      groupsArb({ kMax: 6 }).chain((c) =>
        fc.record({
          c: fc.constant(c),
          u: fc.array(fc.array(gridU, { minLength: c.k, maxLength: c.k }), { minLength: c.b, maxLength: c.b }),
          logp: fc.array(fc.array(uArb(50), { minLength: c.k, maxLength: c.k }), { minLength: c.b, maxLength: c.b }),
        })
      ),
      pairsArb(),
      fc.array(uArb(50), { minLength: 8, maxLength: 8 }),
      hyperArb,
      async ({ c, u, logp }, p, lp, h) => {
        const logpw = p.uw.map((_, i) => lp[i]), logpl = p.uw.map((_, i) => lp[i + 4]);
        const f = { u, rewards: c.rewards, logp, uw: p.uw, ul: p.ul, logpw, logpl, hyper: h };
        const out = await runLosses("wasm", "float64", f, SYMBOLIC);
        const pm = pairMetrics({ uChosen: p.uw, uRejected: p.ul, logpChosen: logpw, logpRejected: logpl }, h);
        const gm = groupMetrics({ u, rewards: c.rewards, logp }, h);
        for (const [name, want] of Object.entries(pm)) {
          const got = out[`pair:${name}`][0];
          assert.ok(Math.abs(got - want) <= 1e-12 * (1 + Math.abs(want)), `pair ${name}: ${got} vs ${want}`);
        }
        for (const [name, want] of Object.entries(gm)) {
          const got = out[`group:${name}`][0];
          assert.ok(Math.abs(got - want) <= 1e-12 * (1 + Math.abs(want)), `group ${name}: ${got} vs ${want}`);
        }
      },
    ),
    { numRuns: RUNS },
  );
});

Deno.test("emitters reject wrong dtypes, shapes and hyper-parameters while the graph is built", () => {
  const g = new Graph();
  const u32 = g.input("u32", "float32", [2, 4]);
  const u64 = g.input("u64", "float64", [2, 4]);
  const w = g.input("w", "float32", [3]);
  const l = g.input("l", "float32", [2]);
  const ints = g.input("i", "int64", [3]);
  const beta64 = g.input("beta64", "float64", []);
  const vec = g.input("vec", "float32", [2]);
  assert.throws(() => emitExoPref(ints, ints), /must be float32 or float64/);
  assert.throws(() => emitExoPref(w, l), /uRejected has shape \[2\], expected \[3\]/);
  assert.throws(() => emitExoPref(w, w, { eps: 0 }), /eps must lie strictly between 0 and 1/);
  assert.throws(() => emitExoRw(u32, u32, { betaPi: beta64 }), /betaPi must have dtype float32/);
  assert.throws(() => emitExoRw(u32, u32, { betaR: vec }), /betaR must be a scalar/);
  assert.throws(() => emitDpoRw(u32, g.input("r", "float32", [2, 3])), /rewards has shape \[2, 3\], expected \[2, 4\]/);
  assert.throws(() => emitDpoRw(g.input("k1", "float32", [2, 1]), g.input("r1", "float32", [2, 1])), /at least 2/);
  assert.throws(() => emitGroupMetrics({ u: u32, rewards: u32, logp: u64 }), /logp has shape|logp must have dtype/);
  // Float64 rewards feeding a float32 loss are cast, not refused.
  assert.equal(emitExoRw(u32, u64).loss.dtype, "float32");
});

Deno.test("release the cached loss sessions", async () => {
  await releaseSessions();
});
