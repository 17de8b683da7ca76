/**
 * Estimates with standard errors. Samples of one prompt are correlated (they share the prompt), so
 * the standard error is clustered by prompt: the mean of per-prompt means, and the standard
 * deviation of those means over √(prompts). With equal samples per prompt the mean equals the plain
 * sample mean.
 *
 * @module
 */

/** A mean and its standard error. */
export interface Estimate {
  mean: number;
  se: number;
  /** Independent units behind it (prompts, or seeds). */
  n: number;
}

/** Mean and standard error of independent values (se 0 for one value). */
export function meanSe(xs: readonly number[]): Estimate {
  const n = xs.length;
  if (n === 0) throw new RangeError("meanSe: no values");
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, se: 0, n };
  const v = xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1);
  return { mean, se: Math.sqrt(v / n), n };
}

/** Mean and prompt-clustered standard error of per-sample values grouped by prompt index. */
export function clusteredMeanSe(values: readonly number[], prompt: readonly number[]): Estimate {
  if (values.length !== prompt.length) throw new RangeError("clusteredMeanSe: values and prompts differ in length");
  const sums = new Map<number, { s: number; n: number }>();
  values.forEach((v, i) => {
    const c = sums.get(prompt[i]) ?? { s: 0, n: 0 };
    c.s += v;
    c.n++;
    sums.set(prompt[i], c);
  });
  return meanSe([...sums.values()].map((c) => c.s / c.n));
}

/** The mean of independent estimates, its error from theirs: √(Σ se²) / n. */
export function pooled(es: readonly Estimate[]): Estimate {
  if (es.length === 0) throw new RangeError("pooled: no estimates");
  const n = es.length;
  return {
    mean: es.reduce((a, e) => a + e.mean, 0) / n,
    se: Math.sqrt(es.reduce((a, e) => a + e.se ** 2, 0)) / n,
    n: es.reduce((a, e) => a + e.n, 0),
  };
}
