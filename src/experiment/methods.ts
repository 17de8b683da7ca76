/**
 * The methods the experiment compares, as one typed registry, and the grid of training runs
 * (method × β × seed) they expand to.
 *
 * Every method trains a LoRA adapter from the SFT model with one of the four losses, over the same
 * β grid for EXO and DPO: β is β_π (TRL's `beta`) and, for the reward losses, also β_r (the library's
 * defaults are both 0.1). The reward losses' minimizer is then π_θ ∝ π_sft · exp(r / (β_π β_r)), the
 * optimal policy of KL coefficient β²; the pair losses have no reward scale of their own. Since no run
 * is trained to its optimum, β sets the path and the checkpoints along it trace the frontier.
 * Best-of-N is not a trained method: it is sampled from the SFT model (`best_of_n.ts`).
 *
 * @module
 */

import type { LossKind } from "../train/preference_graph.ts";

/** The trained methods. `-k2` groups are the `-k4` groups split in halves (same completions and rewards). */
export const METHOD_IDS = ["exo-pref", "dpo-pref", "exo-rw-k4", "dpo-rw-k4", "exo-rw-k2", "dpo-rw-k2"] as const;
export type MethodId = typeof METHOD_IDS[number];

/** How one method trains. */
export interface MethodSpec {
  /** As the figure and tables show it. */
  label: string;
  loss: LossKind;
  /** Preference pairs, or reward groups of `k` completions. */
  data: "pairs" | "groups";
  /** Completions per example: 2 for pairs. */
  k: number;
  family: "exo" | "dpo";
}

export const METHODS: { readonly [M in MethodId]: MethodSpec } = {
  "exo-pref": { label: "EXO-pref", loss: "exo-pref", data: "pairs", k: 2, family: "exo" },
  "dpo-pref": { label: "DPO-pref", loss: "dpo-pref", data: "pairs", k: 2, family: "dpo" },
  "exo-rw-k4": { label: "EXO-rw (K=4)", loss: "exo-rw", data: "groups", k: 4, family: "exo" },
  "dpo-rw-k4": { label: "DPO-rw (K=4)", loss: "dpo-rw", data: "groups", k: 4, family: "dpo" },
  "exo-rw-k2": { label: "EXO-rw (K=2)", loss: "exo-rw", data: "groups", k: 2, family: "exo" },
  "dpo-rw-k2": { label: "DPO-rw (K=2)", loss: "dpo-rw", data: "groups", k: 2, family: "dpo" },
};

/** The comparisons the report makes: EXO against DPO on the same data, and K = 4 against K = 2. */
export const COMPARISONS: readonly { a: MethodId; b: MethodId; question: string }[] = [
  { a: "exo-pref", b: "dpo-pref", question: "EXO vs DPO on pairs" },
  { a: "exo-rw-k4", b: "dpo-rw-k4", question: "EXO vs DPO on reward groups, K=4" },
  { a: "exo-rw-k2", b: "dpo-rw-k2", question: "EXO vs DPO on reward groups, K=2" },
  { a: "exo-rw-k4", b: "exo-rw-k2", question: "EXO-rw: K=4 vs K=2" },
  { a: "dpo-rw-k4", b: "dpo-rw-k2", question: "DPO-rw: K=4 vs K=2" },
];

/** One training run of the grid. */
export interface RunSpec {
  method: MethodId;
  beta: number;
  seed: number;
  /** Directory under the experiment's output, `runs/<method>/beta-<β>/seed-<s>`. */
  dir: string;
}

/** Parses a comma-separated list of method ids, naming a bad one. */
export function parseMethods(list: string): MethodId[] {
  const ids = list.split(",").map((s) => s.trim()).filter(Boolean);
  for (const id of ids) {
    if (!(METHOD_IDS as readonly string[]).includes(id)) {
      throw new RangeError(`--methods: unknown method ${JSON.stringify(id)}; use ${METHOD_IDS.join(", ")}`);
    }
  }
  if (ids.length === 0) throw new RangeError("--methods: the list is empty");
  return [...new Set(ids)] as MethodId[];
}

/** The runs of a grid, seed-major so a stopped experiment has whole seeds done. */
export function expandGrid(
  methods: readonly MethodId[],
  betas: readonly number[],
  seeds: readonly number[],
): RunSpec[] {
  const runs: RunSpec[] = [];
  for (const seed of seeds) {
    for (const beta of betas) {
      for (const method of methods) {
        runs.push({ method, beta, seed, dir: `runs/${method}/beta-${beta}/seed-${seed}` });
      }
    }
  }
  return runs;
}
