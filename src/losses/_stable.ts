/**
 * Numerically stable float64 building blocks of the analytic losses.
 *
 * log-sum-exp subtracts the maximum and adds the rest with `log1p`, so the largest term is exact and
 * nothing overflows for |x| up to ~1e308; softplus switches branches at 0 so `exp` never overflows.
 *
 * @module
 */

/** The maximum m of x and log1p(Σ_{i≠argmax} exp(x_i − m)), so that logsumexp(x) = m + that. */
function maxAndLog1pRest(x: ArrayLike<number>): [number, number] {
  let arg = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[arg]) arg = i;
  const m = x[arg];
  let rest = 0;
  for (let i = 0; i < x.length; i++) if (i !== arg) rest += Math.exp(x[i] - m);
  return [m, Math.log1p(rest)];
}

/** log Σ exp(x_i) = m + log1p(Σ_{i≠argmax} exp(x_i − m)), m = max x. */
export function logSumExp(x: ArrayLike<number>): number {
  const [m, r] = maxAndLog1pRest(x);
  return Number.isFinite(m) ? m + r : m;
}

/**
 * log softmax(x)_i = (x_i − m) − log1p(Σ_{j≠argmax} exp(x_j − m)). Subtracting m first keeps the
 * result exact to its own ulp: x_i − logSumExp(x) would carry the rounding of m + … (ulp(m) ≈ 2e-12 at
 * |x| ≈ 1e4) into every log-probability.
 */
export function logSoftmax(x: ArrayLike<number>): Float64Array {
  const [m, r] = maxAndLog1pRest(x);
  return Float64Array.from(x, (v) => v - m - r);
}

/** softplus(x) = log(1 + e^x), without overflow: x + log1p(e^−x) for x > 0. */
export function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** σ(x) = 1 / (1 + e^−x), evaluated on the side where exp cannot overflow. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Throws a RangeError naming the array and index of the first non-finite entry. */
export function checkFinite(name: string, x: ArrayLike<number>): void {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new RangeError(`${name}[${i}] must be finite, got ${x[i]}`);
  }
}

/** Checks that two per-example arrays have the same, non-zero length. */
export function checkPairs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new RangeError(`uChosen and uRejected must have the same length, got ${a.length} and ${b.length}`);
  }
  if (a.length === 0) throw new RangeError("The batch is empty: pass at least one example");
  checkFinite("uChosen", a);
  checkFinite("uRejected", b);
  return a.length;
}

/** Checks B x K groups (u and rewards of equal shape, K ≥ 2) and returns B. */
export function checkGroups(u: readonly ArrayLike<number>[], rewards: readonly ArrayLike<number>[]): number {
  if (u.length !== rewards.length) {
    throw new RangeError(`u and rewards must have the same number of groups, got ${u.length} and ${rewards.length}`);
  }
  if (u.length === 0) throw new RangeError("The batch is empty: pass at least one group");
  u.forEach((row, b) => {
    if (row.length < 2) throw new RangeError(`Group ${b} has ${row.length} completions: a group needs at least 2`);
    if (rewards[b].length !== row.length) {
      throw new RangeError(`Group ${b} has ${row.length} log-ratios but ${rewards[b].length} rewards`);
    }
    checkFinite(`u[${b}]`, row);
    checkFinite(`rewards[${b}]`, rewards[b]);
  });
  return u.length;
}

/** Mean of a non-empty array. */
export function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
}
