/**
 * Reward–KL frontiers and how two methods compare on them.
 *
 * A method's frontier is its best reward at each KL budget: F(κ) = max{reward of its points with
 * KL ≤ κ}, a non-decreasing step function through its Pareto points (no other point has both less KL
 * and more reward). Every method starts at the SFT model (KL 0, the SFT reward), so F is defined from
 * κ = 0. Method A beats method B by the mean gap over the KL range both reach,
 *
 *   gap(A, B) = (1/κ_max) ∫_0^κ_max (F_A(κ) − F_B(κ)) dκ,   κ_max = min(max KL of A, max KL of B),
 *
 * in reward units: positive when A gets more reward for the same KL. It is computed per seed, so the
 * spread over seeds says whether the difference is more than noise.
 *
 * @module
 */

/** A point of reward against KL. */
export interface FrontierPoint {
  kl: number;
  reward: number;
}

/** The Pareto points in increasing KL (and strictly increasing reward). */
export function paretoFront<P extends FrontierPoint>(points: readonly P[]): P[] {
  const sorted = [...points].sort((a, b) => a.kl - b.kl || b.reward - a.reward);
  const front: P[] = [];
  for (const p of sorted) if (front.length === 0 || p.reward > front[front.length - 1].reward) front.push(p);
  return front;
}

/** F(κ): the best reward of a front at KL ≤ κ (−Infinity below its first point). */
export function frontierAt(front: readonly FrontierPoint[], kl: number): number {
  let best = -Infinity;
  for (const p of front) {
    if (p.kl > kl) break;
    best = p.reward;
  }
  return best;
}

/** The largest KL a set of points reaches. */
export function maxKl(points: readonly FrontierPoint[]): number {
  return points.reduce((m, p) => Math.max(m, p.kl), -Infinity);
}

/**
 * The mean gap F_A − F_B over [0, κ_max] (see the module doc), integrating the two step functions
 * exactly. Both point sets must contain the SFT point (KL 0) or anything at or below 0. Returns null
 * when κ_max ≤ 0 (nothing to compare).
 */
export function meanGap(
  a: readonly FrontierPoint[],
  b: readonly FrontierPoint[],
): { gap: number; klMax: number } | null {
  const klMax = Math.min(maxKl(a), maxKl(b));
  if (!(klMax > 0)) return null;
  const fa = paretoFront(a), fb = paretoFront(b);
  if (!(fa[0].kl <= 0 && fb[0].kl <= 0)) throw new RangeError("meanGap: both point sets need a point at KL <= 0");
  const cuts = [...new Set([0, klMax, ...fa.map((p) => p.kl), ...fb.map((p) => p.kl)])]
    .filter((k) => k >= 0 && k <= klMax)
    .sort((x, y) => x - y);
  let area = 0;
  for (let i = 0; i + 1 < cuts.length; i++) {
    const lo = cuts[i], hi = cuts[i + 1];
    area += (frontierAt(fa, lo) - frontierAt(fb, lo)) * (hi - lo);
  }
  return { gap: area / klMax, klMax };
}
