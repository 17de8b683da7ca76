/**
 * Shared pieces of the loss tests: fast-check arbitraries, an independent transcription of TRL's
 * exo_pair formula, the golden fixtures and small numeric helpers.
 */

import fc from "fast-check";
import { FAMILY_FIXTURES } from "../support/fixture_models.ts";

/** A log-uniform double in [lo, hi]. */
export function logUniform(lo: number, hi: number): fc.Arbitrary<number> {
  return fc.double({ min: Math.log(lo), max: Math.log(hi), noNaN: true }).map(Math.exp);
}

/** Hyper-parameters: β_π, β_r in [0.01, 5], ε in [1e-12, 0.5] (log-uniform). */
export interface Hyper {
  betaPi: number;
  betaR: number;
  eps: number;
}

/** Arbitrary hyper-parameters. */
export const hyperArb: fc.Arbitrary<Hyper> = fc.record({
  betaPi: logUniform(0.01, 5),
  betaR: logUniform(0.01, 5),
  eps: logUniform(1e-12, 0.5),
});

/** A double log-ratio in [-range, range]. */
export function uArb(range = 30): fc.Arbitrary<number> {
  return fc.double({ min: -range, max: range, noNaN: true });
}

/** Rewards in [-3, 3], often on a coarse grid so that ties occur. */
export const rewardArb: fc.Arbitrary<number> = fc.oneof(
  fc.double({ min: -3, max: 3, noNaN: true }),
  fc.integer({ min: -2, max: 2 }).map((x) => x / 2),
);

/** B groups of K completions, with log-ratios and rewards. */
export interface GroupCase {
  b: number;
  k: number;
  u: number[][];
  rewards: number[][];
}

/** Arbitrary groups with B in [bMin, bMax] and K in [kMin, kMax]. */
export function groupsArb(
  { bMin = 1, bMax = 4, kMin = 2, kMax = 16, range = 30 } = {},
): fc.Arbitrary<GroupCase> {
  return fc.tuple(fc.integer({ min: bMin, max: bMax }), fc.integer({ min: kMin, max: kMax })).chain(([b, k]) =>
    fc.record({
      b: fc.constant(b),
      k: fc.constant(k),
      u: fc.array(fc.array(uArb(range), { minLength: k, maxLength: k }), { minLength: b, maxLength: b }),
      rewards: fc.array(fc.array(rewardArb, { minLength: k, maxLength: k }), { minLength: b, maxLength: b }),
    })
  );
}

/** B pairs of log-ratios. */
export interface PairCase {
  uw: number[];
  ul: number[];
}

/** Arbitrary pairs, B in [1, bMax]; about one pair in eight is a tie u_w = u_l. */
export function pairsArb({ bMax = 4, range = 30 } = {}): fc.Arbitrary<PairCase> {
  const pair = fc.oneof(
    { weight: 7, arbitrary: fc.tuple(uArb(range), uArb(range)) },
    { weight: 1, arbitrary: uArb(range).map((x) => [x, x] as [number, number]) },
  );
  return fc.array(pair, { minLength: 1, maxLength: bMax }).map((ps) => ({
    uw: ps.map((p) => p[0]),
    ul: ps.map((p) => p[1]),
  }));
}

/**
 * TRL's exo_pair loss of one pair, transcribed from `DPOTrainer.dpo_loss` (trl 0.x–1.x):
 * `(logits * beta).sigmoid() * (F.logsigmoid(beta * logits) - math.log(1 - ls))
 *  + (-logits * beta).sigmoid() * (F.logsigmoid(-beta * logits) - math.log(ls))`,
 * logits = u_w − u_l; torch's logsigmoid(x) = min(x, 0) − log1p(exp(−|x|)).
 */
export function trlExoPair(uw: number, ul: number, beta: number, ls: number): number {
  const logits = uw - ul;
  const sig = (x: number) => 1 / (1 + Math.exp(-x));
  const logsig = (x: number) => Math.min(x, 0) - Math.log1p(Math.exp(-Math.abs(x)));
  return sig(logits * beta) * (logsig(beta * logits) - Math.log(1 - ls)) +
    sig(-logits * beta) * (logsig(-beta * logits) - Math.log(ls));
}

/** max |a − b| over two equally long arrays (asserts the lengths). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Flattens rows. */
export function flat(rows: readonly ArrayLike<number>[]): Float64Array {
  return Float64Array.from(rows.flatMap((r) => Array.from(r)));
}

/** The `losses` block of a fixture's golden.json (the fields the loss tests use). */
export interface GoldenLosses {
  hyperparams: {
    exo_pref: { beta_pi: number; epsilon: number };
    dpo_pref: { beta: number };
    exo_rw: { beta_pi: number; beta_r: number };
    dpo_rw: { beta_pi: number; beta_r: number };
  };
  groups: { rewards: number[] }[];
  float64: GoldenBlock;
  float32: GoldenBlock;
}

/** One precision's block of golden losses. */
export interface GoldenBlock {
  u_pairs: { chosen: number[]; rejected: number[] };
  u_groups: number[][];
  logp_pairs: { policy_chosen: number[]; policy_rejected: number[] };
  logp_groups: { policy: number[][] };
  exo_pref: { loss: number; per_example: number[]; p_f: number[][] };
  dpo_pref: { loss: number; per_example: number[]; p_f: number[][] };
  exo_rw: { loss: number; per_example: number[]; p_f: number[][]; p_r: number[][] };
  dpo_rw: { loss: number; per_example: number[]; p_f: number[][]; p_r: number[][] };
}

const FIXTURES = new URL("../fixtures/", import.meta.url);

/** The fixture models whose golden.json carries `losses`. */
export const GOLDEN_MODELS = FAMILY_FIXTURES;

/** Reads a fixture's golden `losses`. */
export function readGoldenLosses(model: string): GoldenLosses {
  return JSON.parse(Deno.readTextFileSync(new URL(`${model}/golden.json`, FIXTURES))).losses;
}

/** The rewards of tests/fixtures/rewards.jsonl, one row per group. */
export function readFixtureRewards(): number[][] {
  return Deno.readTextFileSync(new URL("rewards.jsonl", FIXTURES)).trim().split("\n").map((l) =>
    JSON.parse(l).rewards as number[]
  );
}
