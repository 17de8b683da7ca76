/**
 * What an experiment spends: the grid (methods × β × seeds), the training steps of each run, where it
 * checkpoints, and how many held-out samples each checkpoint and Best-of-N take. Two presets:
 * `quick` (the pipeline end to end in a few minutes, for CI) and `full` (the README's run), and the
 * budget table that `experiment --plan` prints.
 *
 * Every run updates on the same number of sequences per step (`sequencesPerUpdate`: with 8, 4 pairs,
 * 4 groups of 2 or 2 groups of 4), so the methods get equal compute and see equally many completions.
 *
 * @module
 */

import { METHOD_IDS, type MethodId, METHODS } from "./methods.ts";

/** The knobs of one experiment. */
export interface Budget {
  /** `quick`, `full`, or `custom` once changed. */
  name: string;
  methods: MethodId[];
  /** β_π (and β_r for the reward losses), the same grid for every method. */
  betas: number[];
  /** Training seeds: LoRA init, batch order and the evaluation's sampling. */
  seeds: number[];
  /** Optimizer updates per run. */
  steps: number;
  /**
   * The updates after which the adapter is evaluated, increasing, the last one = `steps` (denser
   * early, where the KL is small). The trainer checkpoints at their greatest common divisor.
   */
  evalAt: number[];
  /** Sequences per update; a multiple of every method's K. */
  sequencesPerUpdate: number;
  lr: number;
  warmupSteps: number;
  loraR: number;
  /**
   * Use only the first N examples of each training file (null: all). Either way a run reads at most
   * what its updates consume in one pass (`steps × sequencesPerUpdate / K` of the file's K), so the
   * reference log-probs are computed only for examples that are trained on.
   */
  trainExamples: number | null;
  /** Held-out prompts evaluated (the first N of the prompt file). */
  evalPrompts: number;
  /** Samples per prompt and checkpoint (temperature 1, from the policy itself). */
  samplesPerPrompt: number;
  /** SFT samples per prompt for Best-of-N (at least the largest N). */
  bonSamples: number;
  bonN: number[];
  /** New tokens per completion (the data was sampled with 24). */
  maxNewTokens: number;
  /** Prompts decoded together (rows = prompts × samples). */
  decodePrompts: number;
}

export const QUICK: Budget = {
  name: "quick",
  methods: [...METHOD_IDS],
  betas: [0.1],
  seeds: [0],
  steps: 4,
  evalAt: [2, 4],
  sequencesPerUpdate: 8,
  lr: 1e-3,
  warmupSteps: 0,
  loraR: 8,
  trainExamples: 16,
  evalPrompts: 8,
  samplesPerPrompt: 2,
  bonSamples: 16,
  bonN: [1, 2, 4, 8, 16],
  maxNewTokens: 24,
  decodePrompts: 64,
};

export const FULL: Budget = {
  name: "full",
  methods: [...METHOD_IDS],
  betas: [0.05, 0.1, 0.5],
  seeds: [0, 1],
  steps: 60,
  evalAt: [20, 40, 60],
  sequencesPerUpdate: 8,
  lr: 1e-3,
  warmupSteps: 10,
  loraR: 8,
  trainExamples: null,
  evalPrompts: 48,
  samplesPerPrompt: 2,
  bonSamples: 16,
  bonN: [1, 2, 4, 8, 16],
  maxNewTokens: 24,
  decodePrompts: 48,
};

export const BUDGETS: Record<string, Budget> = { quick: QUICK, full: FULL };

/** Checks a budget, naming the bad field as the CLI option that sets it. */
export function checkBudget(b: Budget): void {
  const ints: [string, number, number][] = [
    ["--steps", b.steps, 1],
    ["--sequences-per-update", b.sequencesPerUpdate, 1],
    ["--warmup-steps", b.warmupSteps, 0],
    ["--lora-r", b.loraR, 1],
    ["--eval-prompts", b.evalPrompts, 1],
    ["--samples-per-prompt", b.samplesPerPrompt, 1],
    ["--bon-samples", b.bonSamples, 1],
    ["--max-new-tokens", b.maxNewTokens, 1],
    ["--decode-prompts", b.decodePrompts, 1],
  ];
  if (b.trainExamples !== null) ints.push(["--train-examples", b.trainExamples, 1]);
  for (const [k, v, lo] of ints) {
    if (!(Number.isInteger(v) && v >= lo)) throw new RangeError(`${k} must be an integer >= ${lo}, got ${v}`);
  }
  const at = b.evalAt;
  if (
    at.length === 0 || !at.every((x, i) => Number.isInteger(x) && x >= 1 && (i === 0 || x > at[i - 1])) ||
    at[at.length - 1] !== b.steps
  ) {
    throw new RangeError(
      `--eval-at must be increasing positive integers ending at --steps ${b.steps}, got ${at.join(",")}`,
    );
  }
  if (!(b.lr > 0 && Number.isFinite(b.lr))) throw new RangeError(`--lr must be a positive number, got ${b.lr}`);
  if (b.betas.length === 0 || !b.betas.every((x) => x > 0 && Number.isFinite(x))) {
    throw new RangeError(`--betas must be positive numbers, got ${b.betas.join(",")}`);
  }
  if (new Set(b.betas).size !== b.betas.length) throw new RangeError(`--betas has a repeated value`);
  if (b.seeds.length === 0 || !b.seeds.every((s) => Number.isInteger(s) && s >= 0)) {
    throw new RangeError(`--seeds must be non-negative integers, got ${b.seeds.join(",")}`);
  }
  if (new Set(b.seeds).size !== b.seeds.length) throw new RangeError(`--seeds has a repeated value`);
  for (const m of b.methods) {
    const k = METHODS[m].k;
    if (b.sequencesPerUpdate % k !== 0) {
      throw new RangeError(`--sequences-per-update ${b.sequencesPerUpdate} is not a multiple of ${m}'s K = ${k}`);
    }
  }
  if (!b.bonN.every((n) => Number.isInteger(n) && n >= 1 && n <= b.bonSamples)) {
    throw new RangeError(`Best-of-N sizes must be integers in [1, --bon-samples = ${b.bonSamples}]`);
  }
}

/** The steps at which a run is evaluated. */
export function evalSteps(b: Budget): number[] {
  return [...b.evalAt];
}

/** How often the trainer checkpoints: the greatest common divisor of the evaluated steps. */
export function checkpointEvery(b: Budget): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  return b.evalAt.reduce(gcd);
}

/** Examples a run reads from a file whose examples hold `k` completions (pairs: 2). */
export function examplesUsed(b: Budget, k: number): number {
  const pass = Math.ceil((b.steps * b.sequencesPerUpdate) / k);
  return b.trainExamples === null ? pass : Math.min(pass, b.trainExamples);
}

/** The budget as a markdown table: what the run will spend, before it spends it. */
export function budgetTable(b: Budget): string {
  const runs = b.methods.length * b.betas.length * b.seeds.length;
  const checkpoints = evalSteps(b).length;
  const perCkpt = b.evalPrompts * b.samplesPerPrompt;
  const rows: [string, string][] = [
    ["methods", b.methods.map((m) => METHODS[m].label).join(", ")],
    ["β grid (β_π; β_r too for -rw)", b.betas.join(", ")],
    ["seeds", `${b.seeds.length} (${b.seeds.join(", ")})`],
    ["training runs", `${runs} = ${b.methods.length} methods × ${b.betas.length} β × ${b.seeds.length} seeds`],
    [
      "updates per run",
      `${b.steps} (lr ${b.lr}, ${b.warmupSteps} warmup, then constant; LoRA r = ${b.loraR}, all projections)`,
    ],
    [
      "sequences per update",
      `${b.sequencesPerUpdate} (${
        b.methods.map((m) => `${METHODS[m].label}: ${b.sequencesPerUpdate / METHODS[m].k}`).join(", ")
      } examples)`,
    ],
    [
      "training examples per run",
      `at most one pass: the first ${examplesUsed(b, 2)} pairs, the first ${examplesUsed(b, 4)} groups of 4${
        b.trainExamples === null ? "" : ` (--train-examples ${b.trainExamples})`
      }`,
    ],
    ["updates in all", `${runs * b.steps}`],
    ["checkpoints evaluated per run", `${checkpoints} (steps ${evalSteps(b).join(", ")}) + the SFT model once`],
    [
      "held-out samples per checkpoint",
      `${perCkpt} = ${b.evalPrompts} prompts × ${b.samplesPerPrompt} (T = 1, ≤ ${b.maxNewTokens} new tokens)`,
    ],
    ["policy samples in all", `${runs * checkpoints * perCkpt}`],
    [
      "Best-of-N",
      `N = ${b.bonN.join(", ")} from ${b.bonSamples} SFT samples × ${b.evalPrompts} prompts = ${
        b.bonSamples * b.evalPrompts
      } samples`,
    ],
  ];
  return ["| budget | value |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${v} |`)].join("\n");
}
