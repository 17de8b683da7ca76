/**
 * Best-of-N from the SFT model, the reference frontier: draw N completions, keep the one the oracle
 * scores highest. Its reward is estimated without bias from n ≥ N samples per prompt by averaging
 * over every N-subset, which needs only the sorted rewards r_(1) ≤ … ≤ r_(n):
 *
 *   E[max of N] ≈ Σ_{i=N}^{n} C(i−1, N−1) / C(n, N) · r_(i)
 *
 * (r_(i) is the maximum of exactly C(i−1, N−1) of the C(n, N) subsets). Its KL from the SFT model has
 * the analytic bound log N − (N−1)/N (Stiennon et al. 2020; Beirami et al. 2024), which is what the
 * figure uses.
 *
 * @module
 */

import { type Estimate, meanSe } from "./stats.ts";

/** KL(π_BoN ‖ π_sft) ≤ log N − (N−1)/N, in nats. */
export function bestOfNKl(n: number): number {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`Best-of-N needs an integer N >= 1, got ${n}`);
  return Math.log(n) - (n - 1) / n;
}

/** The unbiased estimate of E[max of N draws] from the rewards of n ≥ N draws of one prompt. */
export function expectedMaxOfN(rewards: readonly number[], n: number): number {
  const m = rewards.length;
  if (!(Number.isInteger(n) && n >= 1 && n <= m)) {
    throw new RangeError(`Best-of-${n} needs at least ${n} samples per prompt, got ${m}`);
  }
  const r = [...rewards].sort((a, b) => a - b);
  // weight_i = C(i−1, N−1) / C(m, N) for i = N..m (1-based), built as a running ratio to stay finite.
  let w = 1 / binomial(m, n); // i = N: C(N−1, N−1) = 1
  let sum = 0;
  for (let i = n; i <= m; i++) {
    sum += w * r[i - 1];
    w *= i / (i - n + 1); // C(i, N−1) / C(i−1, N−1)
  }
  return sum;
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/** One Best-of-N point of the frontier. */
export interface BestOfNPoint {
  n: number;
  /** Analytic bound, nats. */
  kl: number;
  /** Mean over prompts of the per-prompt estimate, with its standard error over prompts. */
  reward: Estimate;
}

/** Best-of-N points from per-prompt reward lists (each at least max N long). */
export function bestOfN(rewardsByPrompt: readonly (readonly number[])[], ns: readonly number[]): BestOfNPoint[] {
  return ns.map((n) => ({
    n,
    kl: bestOfNKl(n),
    reward: meanSe(rewardsByPrompt.map((r) => expectedMaxOfN(r, n))),
  }));
}
