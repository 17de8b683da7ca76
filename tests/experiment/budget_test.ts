import assert from "node:assert/strict";
import { budgetTable, checkBudget, checkpointEvery, examplesUsed, FULL, QUICK } from "../../src/experiment/budget.ts";
import { splitGroup } from "../../src/experiment/data.ts";
import { expandGrid, METHOD_IDS, parseMethods } from "../../src/experiment/methods.ts";
import { parseExperimentArgs } from "../../src/cli/experiment.ts";

Deno.test("budgets: presets valid, bad values named by their option", () => {
  checkBudget(QUICK);
  checkBudget(FULL);
  assert.ok(FULL.betas.length >= 3, "the same β grid of at least three values");
  assert.deepEqual(FULL.bonN, [1, 2, 4, 8, 16]);
  assert.equal(checkpointEvery(FULL), 20);
  assert.equal(checkpointEvery({ ...FULL, evalAt: [6, 9, 12], steps: 12 }), 3);
  assert.equal(examplesUsed(FULL, 2), (FULL.steps * FULL.sequencesPerUpdate) / 2);
  assert.equal(examplesUsed(FULL, 4), (FULL.steps * FULL.sequencesPerUpdate) / 4);
  assert.equal(examplesUsed({ ...FULL, trainExamples: 100 }, 4), 100);
  const bad: [Partial<typeof FULL>, RegExp][] = [
    [{ evalAt: [10, 5, 60] }, /--eval-at must be increasing/],
    [{ evalAt: [10, 20] }, /ending at --steps 60/],
    [{ sequencesPerUpdate: 6 }, /not a multiple of exo-rw-k4's K = 4/],
    [{ steps: 0 }, /--steps must be an integer >= 1/],
    [{ betas: [0.1, 0.1] }, /--betas has a repeated value/],
    [{ betas: [-1] }, /--betas must be positive/],
    [{ bonN: [1, 32] }, /Best-of-N sizes must be integers in \[1, --bon-samples = 16\]/],
    [{ lr: 0 }, /--lr must be a positive number/],
  ];
  for (const [patch, msg] of bad) assert.throws(() => checkBudget({ ...FULL, ...patch }), msg);
  assert.match(budgetTable(FULL), /\| training runs \| 36 = 6 methods × 3 β × 2 seeds \|/);
});

Deno.test("methods: the grid and its parsing", () => {
  assert.equal(expandGrid(METHOD_IDS, [0.1, 0.5], [0, 1, 2]).length, 36);
  assert.equal(expandGrid(["exo-pref"], [0.1], [3])[0].dir, "runs/exo-pref/beta-0.1/seed-3");
  assert.deepEqual(parseMethods("exo-pref, dpo-pref,exo-pref"), ["exo-pref", "dpo-pref"]);
  assert.throws(() => parseMethods("exo-pref,ppo"), /unknown method "ppo"/);
});

Deno.test("K = 2 groups are the K = 4 groups split in halves, rewards alongside", () => {
  const rec = { prompt: "x", completions: ["a", "b", "c", "d"], rewards: [1, 2, 3, 4], extra: true };
  assert.deepEqual(splitGroup(rec, 2), [
    { prompt: "x", completions: ["a", "b"], rewards: [1, 2], extra: true },
    { prompt: "x", completions: ["c", "d"], rewards: [3, 4], extra: true },
  ]);
  const ids = { prompt_ids: [1], completions_ids: [[2], [3]], rewards: [0, 1] };
  assert.deepEqual(splitGroup(ids, 2), [ids]);
});

Deno.test("experiment CLI options build the budget", () => {
  const q = parseExperimentArgs(["--quick"]);
  assert.deepEqual(q.budget, QUICK);
  const a = parseExperimentArgs(["--betas", "0.1,0.2,0.4", "--seeds", "3", "--steps", "40", "--methods", "exo-pref"]);
  assert.deepEqual(a.budget.betas, [0.1, 0.2, 0.4]);
  assert.deepEqual(a.budget.seeds, [0, 1, 2]);
  assert.deepEqual(a.budget.evalAt, [13, 27, 40]); // the preset's points (20, 40, 60 of 60) scaled to 40 steps
  assert.equal(a.budget.name, "full (modified)");
  assert.throws(() => parseExperimentArgs(["--steps", "x"]), /--steps must be a number/);
  assert.throws(() => parseExperimentArgs(["--seeds", "0"]), /--seeds must be an integer >= 1/);
  assert.throws(() => parseExperimentArgs(["--frobnicate"]), /frobnicate/);
});
