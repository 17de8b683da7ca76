/**
 * The experiment's outputs: `results.json` (everything measured), `results.md` (the outcome and the
 * tables), `frontier.vl.json` (the figure's Vega-Lite spec) and `frontier.svg` (the figure), each
 * written atomically.
 *
 * @module
 */

import { type FileSink, joinPath } from "../io/files.ts";
import { type ComparisonResult, klBudgets, plotPoints, rewardAtBudgets, type RunResult } from "./analysis.ts";
import type { BestOfNPoint } from "./best_of_n.ts";
import { type Budget, budgetTable } from "./budget.ts";
import { METHODS } from "./methods.ts";
import { frontierSpec, renderSvg } from "./plot.ts";
import { type Estimate, pooled } from "./stats.ts";

/** What `results.json` holds. */
export interface ExperimentResults {
  version: 1;
  finishedAt: string;
  model: string;
  data: { pairs: string; groups: string; prompts: string };
  oracle: string;
  budget: Budget;
  backend: string;
  backendReason: string;
  /** The SFT model's reward (Best-of-1), the frontier's origin (KL 0). */
  sft: Estimate;
  bestOfN: BestOfNPoint[];
  runs: RunResult[];
  /** Set when the results hold only the runs finished so far (`--partial`). */
  partial?: { runs: number; of: number; seeds: number[] };
  comparisons: ComparisonResult[];
  timings: {
    seconds: number;
    cpuSeconds: number;
    train: number;
    evaluate: number;
    bestOfN: number;
    note: string;
  };
}

const pm = (e: Estimate | null, d = 3) => e ? `${e.mean.toFixed(d)} ± ${e.se.toFixed(d)}` : "–";

/** The markdown report: outcome, tables, budget and timings. */
export function reportMarkdown(r: ExperimentResults): string {
  const b = r.budget;
  // The seeds the results hold (all of the budget's, unless they are partial).
  const seedList = [...new Set(r.runs.map((x) => x.seed))];
  const seeds = seedList.length;
  const budgets = klBudgets(r.runs);
  const atKl = rewardAtBudgets(r.runs, seedList, r.sft.mean, budgets);
  const lines: string[] = [];
  lines.push(
    `## Outcome (${r.budget.name}: ${seeds} seed${
      seeds === 1 ? "" : "s"
    }, ${r.runs.length} runs, backend ${r.backend})`,
    ...(r.partial
      ? [
        "",
        `**Partial: the ${r.partial.runs} runs of the seeds finished (${
          r.partial.seeds.join(", ")
        }) of the grid's ${r.partial.of}.**`,
      ]
      : []),
    "",
    "Mean frontier gap = the average, over the KL range both methods reach, of the difference between their best rewards at each KL (reward units; computed per seed, mean ± standard error over seeds).",
    "",
    "| comparison | mean frontier gap | KL range (nats) | verdict |",
    "| --- | --- | --- | --- |",
  );
  for (const c of r.comparisons) {
    const range = c.perSeed.length
      ? `0–${(c.perSeed.reduce((a, p) => a + p.klMax, 0) / c.perSeed.length).toFixed(2)}`
      : "–";
    lines.push(`| ${c.question} | ${pm(c.gap)} | ${range} | ${c.verdict} |`);
  }
  lines.push(
    "",
    `### Best reward at KL ≤ κ (mean ± SE over ${seeds} seed${
      seeds === 1 ? "" : "s"
    }; every checkpoint of every β counts)`,
    "",
    `| method | ${budgets.map((k) => `κ = ${k}`).join(" | ")} | largest KL reached |`,
    `| --- | ${budgets.map(() => "---").join(" | ")} | --- |`,
  );
  for (const row of atKl) {
    lines.push(
      `| ${METHODS[row.method].label} | ${row.atKl.map((e) => pm(e)).join(" | ")} | ${row.maxKl.toFixed(2)} |`,
    );
  }
  const bonAt = budgets.map((k) => {
    const inside = r.bestOfN.filter((p) => p.kl <= k);
    return inside.length ? inside[inside.length - 1].reward : null;
  });
  lines.push(`| Best-of-N (SFT) | ${bonAt.map((e) => pm(e)).join(" | ")} | ${r.bestOfN.at(-1)!.kl.toFixed(2)} |`);
  lines.push(
    "",
    `### Best-of-N from the SFT model (${b.bonSamples} samples × ${b.evalPrompts} prompts; KL = log N − (N−1)/N)`,
    "",
    "| N | KL (nats) | reward |",
    "| --- | --- | --- |",
    ...r.bestOfN.map((p) => `| ${p.n} | ${p.kl.toFixed(3)} | ${pm(p.reward)} |`),
    "",
    `### Every checkpoint (mean ± SE; the SE pools the prompt-clustered errors of the ${seeds} seed${
      seeds === 1 ? "" : "s"
    })`,
    "",
    "| method | β | step | KL (nats) | reward | EOS | tokens |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  );
  const keys = new Map<string, RunResult[]>();
  for (const run of r.runs) {
    keys.set(`${run.method}|${run.beta}`, [...(keys.get(`${run.method}|${run.beta}`) ?? []), run]);
  }
  for (const [, runs] of keys) {
    for (const [i, c] of runs[0].checkpoints.entries()) {
      const cs = runs.map((x) => x.checkpoints[i]);
      const eos = cs.reduce((a, x) => a + x.eosFraction, 0) / cs.length;
      const tokens = cs.reduce((a, x) => a + x.meanTokens, 0) / cs.length;
      lines.push(
        `| ${METHODS[runs[0].method].label} | ${runs[0].beta} | ${c.step} | ${pm(pooled(cs.map((x) => x.kl)), 2)} | ${
          pm(pooled(cs.map((x) => x.reward)))
        } | ${eos.toFixed(2)} | ${tokens.toFixed(1)} |`,
      );
    }
  }
  const t = r.timings;
  const train = r.runs.reduce((a, x) => a + x.train.seconds, 0);
  lines.push(
    "",
    "### Budget",
    "",
    budgetTable(b),
    "",
    `Oracle: ${r.oracle}. Model: ${r.model}. SFT reward (T = 1): ${pm(r.sft)}.`,
    "",
    `Time: ${t.seconds.toFixed(0)} s wall (${t.cpuSeconds.toFixed(0)} s CPU) in this session: training ${
      t.train.toFixed(0)
    } s (the runs' own clocks: ${train.toFixed(0)} s), evaluation ${t.evaluate.toFixed(0)} s, Best-of-N ${
      t.bestOfN.toFixed(0)
    } s; backend ${r.backend}.`,
  );
  return lines.join("\n") + "\n";
}

/** Writes results.json, results.md, frontier.vl.json and (with `figure`) frontier.svg into `out`. */
export async function writeReport(r: ExperimentResults, out: string, files: FileSink, figure: boolean): Promise<void> {
  await files.writeText(joinPath(out, "results.json"), JSON.stringify(r, null, 2) + "\n");
  await files.writeText(joinPath(out, "results.md"), reportMarkdown(r));
  const spec = frontierSpec(
    plotPoints(r.runs, r.bestOfN, r.sft),
    "Reward vs KL from the SFT model",
    `${r.model.split("/").at(-1)}, oracle ${r.oracle}, ${
      new Set(r.runs.map((x) => x.seed)).size
    } seed(s), held-out prompts; ±1 SE`,
  );
  await files.writeText(joinPath(out, "frontier.vl.json"), JSON.stringify(spec, null, 2) + "\n");
  if (figure) await files.writeText(joinPath(out, "frontier.svg"), await renderSvg(spec));
}
