/**
 * `deno task experiment [--quick] [options]` (`exo-tune experiment`): the EXO paper's controlled
 * sentiment experiment on the bundled SFT model — EXO-pref, DPO-pref, EXO-rw and DPO-rw (K = 4 and
 * K = 2) over a β grid with checkpoints, against Best-of-N, on the reward–KL plane. Writes
 * results.json, results.md, frontier.svg (+ frontier.vl.json) to --out; rerun the same command to
 * continue an interrupted experiment.
 *
 * Exit codes: 0 done, 2 bad input (nothing trained), 1 a failure, 130 interrupted (rerun to continue).
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { type Budget, budgetTable, FULL, QUICK } from "../experiment/budget.ts";
import { parseMethods } from "../experiment/methods.ts";
import { commandOracle, type Oracle, vaderOracle } from "../experiment/oracle.ts";
import { reportMarkdown } from "../experiment/report.ts";
import { ExperimentInterrupted, ExperimentMismatchError, runExperiment } from "../experiment/run.ts";
import { localFiles } from "../io/files.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import { bundled, stamp } from "./_bundled.ts";
import { isInputError } from "./errors.ts";

const HELP = `Usage: deno task experiment [--quick] [options]     (exo-tune experiment ...)

EXO vs DPO (pairs; reward groups with K = 4 and K = 2) vs Best-of-N on the reward-KL plane:
trains every method over a beta grid, evaluates checkpoints on held-out prompts (reward of samples
at temperature 1 and KL(pi_theta || pi_sft) from the same samples), writes results.json,
results.md and frontier.svg. Rerun the same command with the same --out to continue.

  --quick                 the pipeline end to end in a few minutes (CI); default: the full run
  --plan                  print the budget table and exit
  --out DIR               (default runs/experiment-<time>)
  --backend B             auto | webgpu | wasm, and the engines this install has (default auto)
  --oracle-cmd CMD        your reward: a shell command reading JSON lines {"prompt","completion"}
                          on stdin and printing one number per line (default: VADER compound of
                          prompt + completion, the bundled data's oracle)
  --no-figure             skip frontier.svg (no vega / vega-lite needed)
  --partial               train nothing: write the results of the seeds whose runs are all finished
  --shard i/n             run every n-th run of the grid from the i-th (processes or machines sharing
                          --out; the engines already use up to 4 cores each); then run
                          once without --shard to write the results
  --json                  print results.json on stdout instead of the report

Data (default: the bundled review model and data):
  --model DIR             the SFT model
  --pairs FILE            preference pairs for the -pref methods
  --groups FILE           reward groups for the -rw methods (K = 2 splits each group)
  --prompts FILE          held-out prompts

Budget (defaults: the preset's; --plan shows them):
  --methods a,b,...       exo-pref, dpo-pref, exo-rw-k4, dpo-rw-k4, exo-rw-k2, dpo-rw-k2
  --betas a,b,...         beta grid, the same for every method (beta_pi; beta_r too for -rw)
  --seeds N               seeds 0..N-1
  --steps N               updates per run
  --eval-at a,b,...       evaluate after these updates (increasing, the last = --steps)
  --sequences-per-update N                         --lr F    --warmup-steps N    --lora-r N
  --train-examples N      first N lines of each training file
  --eval-prompts N        --samples-per-prompt N   --bon-samples N   --max-new-tokens N
  --decode-prompts N      prompts decoded together`;

const INT_OPTIONS = {
  steps: "steps",
  "sequences-per-update": "sequencesPerUpdate",
  "warmup-steps": "warmupSteps",
  "lora-r": "loraR",
  "train-examples": "trainExamples",
  "eval-prompts": "evalPrompts",
  "samples-per-prompt": "samplesPerPrompt",
  "bon-samples": "bonSamples",
  "max-new-tokens": "maxNewTokens",
  "decode-prompts": "decodePrompts",
} as const;

function number(name: string, v: string): number {
  const x = Number(v);
  if (v.trim() === "" || !Number.isFinite(x)) {
    throw new RangeError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  }
  return x;
}

/** Parses the command line into the budget and the run's options (throws RangeError on bad values). */
export function parseExperimentArgs(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      quick: { type: "boolean" },
      plan: { type: "boolean" },
      out: { type: "string" },
      backend: { type: "string" },
      "oracle-cmd": { type: "string" },
      "no-figure": { type: "boolean" },
      shard: { type: "string" },
      partial: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean" },
      model: { type: "string" },
      pairs: { type: "string" },
      groups: { type: "string" },
      prompts: { type: "string" },
      methods: { type: "string" },
      betas: { type: "string" },
      seeds: { type: "string" },
      lr: { type: "string" },
      "eval-at": { type: "string" },
      ...Object.fromEntries(Object.keys(INT_OPTIONS).map((k) => [k, { type: "string" as const }])),
    },
  });
  const preset = values.quick ? QUICK : FULL;
  const budget: Budget = structuredClone(preset);
  let changed = false;
  for (const [opt, key] of Object.entries(INT_OPTIONS)) {
    const v = (values as Record<string, string | undefined>)[opt];
    if (v === undefined) continue;
    (budget as unknown as Record<string, number>)[key] = number(opt, v);
    changed = true;
  }
  if (values.lr !== undefined) [budget.lr, changed] = [number("lr", values.lr), true];
  if (values.methods !== undefined) [budget.methods, changed] = [parseMethods(values.methods), true];
  if (values["eval-at"] !== undefined) {
    budget.evalAt = values["eval-at"].split(",").map((s) => number("eval-at", s));
    changed = true;
  } else if (budget.steps !== preset.steps) {
    // A new step count without --eval-at: the preset's evaluation points, scaled to it.
    const f = budget.steps / preset.steps;
    budget.evalAt = [...new Set(preset.evalAt.map((s) => Math.max(1, Math.round(s * f))))];
  }
  if (values.betas !== undefined) {
    budget.betas = values.betas.split(",").map((s) => number("betas", s));
    changed = true;
  }
  if (values.seeds !== undefined) {
    const n = number("seeds", values.seeds);
    if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`--seeds must be an integer >= 1, got ${values.seeds}`);
    budget.seeds = Array.from({ length: n }, (_, i) => i);
    changed = true;
  }
  let shard: { index: number; count: number } | undefined;
  if (values.shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(values.shard);
    if (!m || !(Number(m[1]) >= 1 && Number(m[1]) <= Number(m[2]))) {
      throw new RangeError(`--shard must be i/n with 1 <= i <= n, got ${JSON.stringify(values.shard)}`);
    }
    shard = { index: Number(m[1]), count: Number(m[2]) };
  }
  if (changed) budget.name = `${preset.name} (modified)`;
  return {
    budget,
    help: values.help ?? false,
    plan: values.plan ?? false,
    json: values.json ?? false,
    figure: !(values["no-figure"] ?? false),
    shard,
    partial: values.partial ?? false,
    out: values.out ?? `runs/experiment-${values.quick ? "quick-" : ""}${stamp()}`,
    backend: (values.backend ?? "auto") as BackendPreference,
    oracleCmd: values["oracle-cmd"],
    model: values.model ?? bundled("models/review-gpt2"),
    pairs: values.pairs ?? bundled("data/pairs.jsonl"),
    groups: values.groups ?? bundled("data/rewards.jsonl"),
    prompts: values.prompts ?? bundled("data/prompts-test.jsonl"),
  };
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseExperimentArgs>;
  try {
    args = parseExperimentArgs(argv);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  if (args.plan) {
    console.log(budgetTable(args.budget));
    return 0;
  }
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error("\ninterrupt: stopping at the next update (Ctrl-C again to quit at once); rerun to continue");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  const say = (s: string) => console.error(s);
  try {
    const oracle: Oracle = args.oracleCmd !== undefined ? commandOracle(args.oracleCmd) : await vaderOracle();
    say(`exo-tune experiment (${args.budget.name}) -> ${args.out}`);
    say(budgetTable(args.budget));
    const results = await runExperiment({
      model: args.model,
      pairs: args.pairs,
      groups: args.groups,
      prompts: args.prompts,
      out: args.out,
      budget: args.budget,
      oracle,
      backend: args.backend,
      figure: args.figure,
      files: localFiles(),
      log: say,
      signal: controller.signal,
      shard: args.shard,
      partial: args.partial,
    });
    if (!("version" in results)) return 0; // a shard: its runs are on disk
    if (args.json) console.log(JSON.stringify(results));
    else {
      console.log(reportMarkdown(results));
      console.log(
        `Results: ${args.out}/results.json, ${args.out}/results.md${
          args.figure ? `, ${args.out}/frontier.svg` : ""
        } (spec: ${args.out}/frontier.vl.json)`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    if (e instanceof ExperimentInterrupted) return 130;
    return isInputError(e) || e instanceof ExperimentMismatchError ? 2 : 1;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
