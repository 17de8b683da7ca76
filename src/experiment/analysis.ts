/**
 * From evaluated runs to the outcome: the SFT origin, seed-averaged points for the figure, per-seed
 * frontier gaps for each comparison, and the best reward at a ladder of KL budgets.
 *
 * @module
 */

import type { BestOfNPoint } from "./best_of_n.ts";
import { frontierAt, type FrontierPoint, maxKl, meanGap, paretoFront } from "./frontier.ts";
import { COMPARISONS, type MethodId, METHODS } from "./methods.ts";
import type { PlotPoint } from "./plot.ts";
import type { PolicyEval } from "./evaluate.ts";
import { type Estimate, meanSe, pooled } from "./stats.ts";

/** One evaluated checkpoint of a run. */
export interface CheckpointResult extends PolicyEval {
  step: number;
}

/** One training run and its checkpoints. */
export interface RunResult {
  method: MethodId;
  beta: number;
  seed: number;
  dir: string;
  train: {
    steps: number;
    seconds: number;
    referenceSeconds: number;
    tokensPerSecond: number;
    finalLoss: number | null;
  };
  checkpoints: CheckpointResult[];
}

/** A comparison of two methods' frontiers, seed by seed. */
export interface ComparisonResult {
  a: MethodId;
  b: MethodId;
  question: string;
  perSeed: { seed: number; gap: number; klMax: number }[];
  /** Mean gap over seeds (reward units; > 0: A is ahead), null when no seed had a KL range to compare. */
  gap: Estimate | null;
  /** Seeds where A's gap is positive. */
  wins: number;
  verdict: string;
}

/** The points of one method and seed: the SFT origin and every checkpoint of every β. */
export function methodPoints(runs: readonly RunResult[], method: MethodId, seed: number, sftReward: number) {
  const pts: FrontierPoint[] = [{ kl: 0, reward: sftReward }];
  for (const r of runs) {
    if (r.method !== method || r.seed !== seed) continue;
    for (const c of r.checkpoints) pts.push({ kl: c.kl.mean, reward: c.reward.mean });
  }
  return pts;
}

/** Says what a gap estimate means (±2 standard errors over seeds decide). */
export function verdict(a: string, b: string, gap: Estimate | null, wins: number): string {
  if (!gap) return `${a} and ${b} reach no common KL range: not compared`;
  const s = `${gap.mean >= 0 ? "+" : ""}${gap.mean.toFixed(3)} ± ${gap.se.toFixed(3)}`;
  const seeds = `${wins} of ${gap.n} seed${gap.n === 1 ? "" : "s"}`;
  if (gap.n < 2) return `${a} − ${b}: ${s} (1 seed: no spread over seeds to judge by)`;
  if (gap.mean > 2 * gap.se && wins === gap.n) return `${a} dominates ${b}: ${s}, ahead in ${seeds}`;
  if (gap.mean < -2 * gap.se && wins === 0) return `${b} dominates ${a}: ${s}, ${a} ahead in ${seeds}`;
  return `no clear difference: ${s}, ${a} ahead in ${seeds}`;
}

/** Every comparison whose two methods were both run. */
export function compare(runs: readonly RunResult[], seeds: readonly number[], sftReward: number): ComparisonResult[] {
  const ran = new Set(runs.map((r) => r.method));
  return COMPARISONS.filter((c) => ran.has(c.a) && ran.has(c.b)).map((c) => {
    const perSeed: ComparisonResult["perSeed"] = [];
    for (const seed of seeds) {
      const g = meanGap(methodPoints(runs, c.a, seed, sftReward), methodPoints(runs, c.b, seed, sftReward));
      if (g) perSeed.push({ seed, ...g });
    }
    const gap = perSeed.length ? meanSe(perSeed.map((p) => p.gap)) : null;
    const wins = perSeed.filter((p) => p.gap > 0).length;
    return { ...c, perSeed, gap, wins, verdict: verdict(METHODS[c.a].label, METHODS[c.b].label, gap, wins) };
  });
}

/** Seed-averaged checkpoints (and the SFT origin) of every method, plus Best-of-N, for the figure. */
export function plotPoints(runs: readonly RunResult[], bon: readonly BestOfNPoint[], sft: Estimate): PlotPoint[] {
  const out: PlotPoint[] = [];
  const methods = [...new Set(runs.map((r) => r.method))];
  for (const m of methods) {
    out.push({ label: METHODS[m].label, group: "SFT", step: 0, kl: 0, klSe: 0, reward: sft.mean, rewardSe: sft.se });
    const keys = new Map<string, CheckpointResult[]>();
    for (const r of runs.filter((r) => r.method === m)) {
      for (const c of r.checkpoints) {
        const k = `${r.beta}|${c.step}`;
        keys.set(k, [...(keys.get(k) ?? []), c]);
      }
    }
    for (const [k, cs] of keys) {
      const [beta, step] = k.split("|").map(Number);
      const kl = pooled(cs.map((c) => c.kl)), reward = pooled(cs.map((c) => c.reward));
      out.push({
        label: METHODS[m].label,
        group: `β = ${beta}`,
        step,
        kl: kl.mean,
        klSe: kl.se,
        reward: reward.mean,
        rewardSe: reward.se,
      });
    }
  }
  for (const b of bon) {
    out.push({
      label: "Best-of-N (SFT)",
      group: "Best-of-N",
      n: `N=${b.n}`,
      step: null,
      kl: b.kl,
      klSe: 0,
      reward: b.reward.mean,
      rewardSe: b.reward.se,
    });
  }
  return out;
}

/** The ladder of KL budgets the table reports: powers of 2 from 0.5 up to the largest KL reached. */
export function klBudgets(runs: readonly RunResult[]): number[] {
  const top = Math.max(0, ...runs.flatMap((r) => r.checkpoints.map((c) => c.kl.mean)));
  const out: number[] = [];
  for (let k = 0.5; k <= Math.max(top, 0.5) && out.length < 10; k *= 2) out.push(k);
  return out;
}

/** Best reward at KL ≤ κ per method: the mean over seeds of each seed's frontier, with its error. */
export function rewardAtBudgets(
  runs: readonly RunResult[],
  seeds: readonly number[],
  sftReward: number,
  budgets: readonly number[],
): { method: MethodId; atKl: Estimate[]; maxKl: number }[] {
  const methods = [...new Set(runs.map((r) => r.method))];
  return methods.map((m) => {
    // Only the seeds this method has runs of (all of them, unless the results are partial).
    const ran = seeds.filter((s) => runs.some((r) => r.method === m && r.seed === s));
    const fronts = ran.map((s) => paretoFront(methodPoints(runs, m, s, sftReward)));
    return {
      method: m,
      atKl: budgets.map((k) => meanSe(fronts.map((f) => frontierAt(f, k)))),
      maxKl: meanSe(ran.map((s) => maxKl(methodPoints(runs, m, s, sftReward)))).mean,
    };
  });
}
