/**
 * Theorems 3.2 and 3.3 of the EXO paper, numerically, on a tabular policy over a small outcome
 * space Y (one prompt): π_θ = softmax(θ), a fixed π_sft (the reference), rewards r(y).
 *
 *   π_θ^β_π ∝ π_θ^β_π π_sft^(1−β_π) = softmax(β_π log π_θ + (1 − β_π) log π_sft)   ("q")
 *   π*_β_r  ∝ π_sft exp(r / β_r)                                                ("p")
 *
 * With K i.i.d. samples y_i ~ π_sft, u_i = log π_θ(y_i) − log π_sft(y_i) and ∂u_i/∂θ = e_{y_i} − π_θ:
 * - Theorem 3.2: E ∇_θ L_EXO-rw → ∇_θ KL(q ‖ p) (reverse KL) as K → ∞;
 * - Theorem 3.3: E ∇_θ L_DPO-rw → ∇_θ KL(p ‖ q) (forward KL).
 * Closed forms (q = softmax(a), ∂a/∂θ = β_π I): ∇ KL(q‖p) = β_π q ⊙ (log q − log p − KL(q‖p)),
 * ∇ KL(p‖q) = β_π (q − p).
 */

import assert from "node:assert/strict";
import { dpoRw, exoRw } from "../../src/losses/mod.ts";
import { Rng } from "../../src/util/rng.ts";

function logSoftmax(x: readonly number[]): number[] {
  const m = Math.max(...x);
  const l = m + Math.log(x.reduce((s, v) => s + Math.exp(v - m), 0));
  return x.map((v) => v - l);
}

function norm(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s);
}

function dist(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return norm(Array.from(a, (v, i) => v - b[i]));
}

/** A tabular problem: θ, log π_sft and rewards over n outcomes, drawn from a seed. */
interface Problem {
  n: number;
  betaPi: number;
  betaR: number;
  theta: number[];
  logSft: number[];
  r: number[];
}

function makeProblem(seed: number, n: number, betaPi: number, betaR: number): Problem {
  const rng = new Rng(seed);
  const draw = () => Array.from({ length: n }, () => rng.normal());
  return { n, betaPi, betaR, theta: draw(), logSft: logSoftmax(draw()), r: draw() };
}

/** log q, log p, the two KLs and their closed-form gradients w.r.t. θ. */
function exact(pr: Problem) {
  const logPi = logSoftmax(pr.theta);
  const logQ = logSoftmax(logPi.map((l, i) => pr.betaPi * l + (1 - pr.betaPi) * pr.logSft[i]));
  const logP = logSoftmax(pr.r.map((v, i) => pr.logSft[i] + v / pr.betaR));
  const q = logQ.map(Math.exp), p = logP.map(Math.exp);
  const klRev = q.reduce((s, qi, i) => s + qi * (logQ[i] - logP[i]), 0);
  const klFwd = p.reduce((s, pi, i) => s + pi * (logP[i] - logQ[i]), 0);
  return {
    klRev,
    klFwd,
    gradRev: q.map((qi, i) => pr.betaPi * qi * (logQ[i] - logP[i] - klRev)),
    gradFwd: q.map((qi, i) => pr.betaPi * (qi - p[i])),
  };
}

/** Chain rule through u = log softmax(θ) − log π_sft: ∇_θ = Σ_i g_i (e_{y_i} − π_θ). */
function chainToTheta(pr: Problem, ys: readonly number[], g: ArrayLike<number>, out: Float64Array, scale = 1): void {
  const pi = logSoftmax(pr.theta).map(Math.exp);
  ys.forEach((y, i) => {
    for (let j = 0; j < pr.n; j++) out[j] += scale * g[i] * ((j === y ? 1 : 0) - pi[j]);
  });
}

const PROBLEMS: Problem[] = [
  makeProblem(11, 6, 0.1, 1),
  makeProblem(12, 8, 0.5, 0.5),
  makeProblem(13, 10, 1, 2),
];

Deno.test("the closed-form KL gradients match central differences of the KLs", () => {
  for (const pr of PROBLEMS) {
    const e = exact(pr);
    const h = 1e-6;
    for (let j = 0; j < pr.n; j++) {
      const at = (d: number) => exact({ ...pr, theta: pr.theta.map((t, i) => (i === j ? t + d : t)) });
      const fdRev = (at(h).klRev - at(-h).klRev) / (2 * h);
      const fdFwd = (at(h).klFwd - at(-h).klFwd) / (2 * h);
      assert.ok(Math.abs(fdRev - e.gradRev[j]) < 1e-8, `reverse KL θ_${j}: fd ${fdRev} vs ${e.gradRev[j]}`);
      assert.ok(Math.abs(fdFwd - e.gradFwd[j]) < 1e-8, `forward KL θ_${j}: fd ${fdFwd} vs ${e.gradFwd[j]}`);
    }
  }
});

Deno.test("K → ∞ limit in closed form: EXO-rw over all of Y with importance weights is the reverse KL, DPO-rw the forward KL", () => {
  for (const pr of PROBLEMS) {
    const e = exact(pr);
    const ys = [...Array(pr.n).keys()];
    const logPi = logSoftmax(pr.theta);
    // The sampling density π_sft enters both softmaxes as log-weights: z_y = β_π u_y + log π_sft(y),
    // r_y / β_r + log π_sft(y); shifting u by a constant per y leaves ∂/∂u unchanged.
    const uW = ys.map((y) => logPi[y] - pr.logSft[y] + pr.logSft[y] / pr.betaPi);
    const rW = ys.map((y) => pr.r[y] + pr.betaR * pr.logSft[y]);
    const opts = { betaPi: pr.betaPi, betaR: pr.betaR };
    const exo = exoRw([uW], [rW], opts), dpo = dpoRw([uW], [rW], opts);
    assert.ok(Math.abs(exo.loss - e.klRev) < 1e-12, `EXO-rw loss ${exo.loss} vs KL(q‖p) ${e.klRev}`);
    // The DPO-rw loss is the cross-entropy H(p) + KL(p‖q).
    const hP = -exo.pR[0].reduce((s, p) => s + p * Math.log(p), 0);
    assert.ok(Math.abs(dpo.loss - hP - e.klFwd) < 1e-12, `DPO-rw loss ${dpo.loss} vs H(p) + KL(p‖q)`);
    const gExo = new Float64Array(pr.n), gDpo = new Float64Array(pr.n);
    chainToTheta(pr, ys, exo.grad[0], gExo);
    chainToTheta(pr, ys, dpo.grad[0], gDpo);
    assert.ok(dist(gExo, e.gradRev) < 1e-9, `EXO: ${dist(gExo, e.gradRev)}`);
    assert.ok(dist(gDpo, e.gradFwd) < 1e-9, `DPO: ${dist(gDpo, e.gradFwd)}`);
  }
});

/** Samples from a discrete distribution given by its log-probabilities. */
function sampler(rng: Rng, logP: readonly number[]): () => number {
  const cdf: number[] = [];
  let acc = 0;
  for (const l of logP) cdf.push(acc += Math.exp(l));
  return () => {
    const x = rng.next() * acc;
    let i = 0;
    while (i < cdf.length - 1 && x >= cdf[i]) i++;
    return i;
  };
}

/**
 * Monte Carlo over `batches` seeded batches of K samples from π_sft: the mean θ-gradient of
 * EXO-rw and DPO-rw, and the RMS distance of a single batch's gradient to its K → ∞ target.
 */
function monteCarlo(pr: Problem, k: number, batches: number, seed: number) {
  const e = exact(pr);
  const rng = new Rng(seed);
  const draw = sampler(rng, pr.logSft);
  const logPi = logSoftmax(pr.theta);
  const opts = { betaPi: pr.betaPi, betaR: pr.betaR };
  const meanExo = new Float64Array(pr.n), meanDpo = new Float64Array(pr.n);
  let sqExo = 0, sqDpo = 0;
  for (let t = 0; t < batches; t++) {
    const ys = Array.from({ length: k }, draw);
    const u = [ys.map((y) => logPi[y] - pr.logSft[y])], r = [ys.map((y) => pr.r[y])];
    const gExo = new Float64Array(pr.n), gDpo = new Float64Array(pr.n);
    chainToTheta(pr, ys, exoRw(u, r, opts).grad[0], gExo);
    chainToTheta(pr, ys, dpoRw(u, r, opts).grad[0], gDpo);
    sqExo += dist(gExo, e.gradRev) ** 2;
    sqDpo += dist(gDpo, e.gradFwd) ** 2;
    for (let j = 0; j < pr.n; j++) {
      meanExo[j] += gExo[j] / batches;
      meanDpo[j] += gDpo[j] / batches;
    }
  }
  return { e, meanExo, meanDpo, rmsExo: Math.sqrt(sqExo / batches), rmsDpo: Math.sqrt(sqDpo / batches) };
}

/** Least-squares slope of log y against log x. */
function logLogSlope(xs: readonly number[], ys: readonly number[]): number {
  const lx = xs.map(Math.log), ly = ys.map(Math.log);
  const mx = lx.reduce((a, b) => a + b) / lx.length, my = ly.reduce((a, b) => a + b) / ly.length;
  let num = 0, den = 0;
  lx.forEach((x, i) => {
    num += (x - mx) * (ly[i] - my);
    den += (x - mx) ** 2;
  });
  return num / den;
}

Deno.test("Theorems 3.2 / 3.3: sampled EXO-rw gradients approach the reverse-KL gradient, DPO-rw the forward-KL one", () => {
  const ks = [8, 32, 128, 512];
  for (const [p, pr] of PROBLEMS.entries()) {
    const runs = ks.map((k) => monteCarlo(pr, k, 800, 1000 + 10 * p + k));
    const { e } = runs[0];
    const where = `problem ${p} (n=${pr.n}, β_π=${pr.betaPi}, β_r=${pr.betaR})`;
    // One batch's gradient error shrinks like 1/√K (the variance of the self-normalized estimate).
    for (const [name, rms] of [["EXO", runs.map((r) => r.rmsExo)], ["DPO", runs.map((r) => r.rmsDpo)]] as const) {
      const slope = logLogSlope(ks, rms);
      assert.ok(slope > -0.65 && slope < -0.35, `${where} ${name}: RMS error slope ${slope} (RMS ${rms})`);
    }
    // The averaged gradient (bias O(1/K) plus noise) approaches its own target at least as fast as
    // 1/√K (a 64x larger K divides the error by more than 8), and stays far from the other KL's
    // gradient: the two losses have different limits.
    const [first, last] = [runs[0], runs[runs.length - 1]];
    const errExo = [first, last].map((r) => dist(r.meanExo, e.gradRev));
    const errDpo = [first, last].map((r) => dist(r.meanDpo, e.gradFwd));
    assert.ok(errExo[1] / norm(e.gradRev) < 0.04, `${where} EXO mean gradient at K=512: relative error ${errExo[1]}`);
    assert.ok(errDpo[1] / norm(e.gradFwd) < 0.04, `${where} DPO mean gradient at K=512: relative error ${errDpo[1]}`);
    assert.ok(errExo[0] > 8 * errExo[1], `${where} EXO error K=8 -> 512: ${errExo}`);
    assert.ok(errDpo[0] > 8 * errDpo[1], `${where} DPO error K=8 -> 512: ${errDpo}`);
    const gap = dist(e.gradRev, e.gradFwd);
    assert.ok(dist(last.meanExo, e.gradFwd) > 0.5 * gap, `${where} EXO does not approach the forward KL`);
    assert.ok(dist(last.meanDpo, e.gradRev) > 0.5 * gap, `${where} DPO does not approach the reverse KL`);
  }
});
