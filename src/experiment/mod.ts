/**
 * The EXO paper's controlled-sentiment experiment on a device: EXO vs DPO (pairs and reward groups,
 * K = 4 and 2) against Best-of-N on the reward–KL plane, with a pluggable oracle. Not part of the
 * library's root API (`mod.ts`): import it from here.
 *
 * @module
 */

export { ExperimentInterrupted, ExperimentMismatchError, type ExperimentOptions, runExperiment } from "./run.ts";
export { type ExperimentResults, reportMarkdown } from "./report.ts";
export { type Budget, BUDGETS, budgetTable, checkBudget, evalSteps, FULL, QUICK } from "./budget.ts";
export { COMPARISONS, METHOD_IDS, type MethodId, METHODS, type MethodSpec } from "./methods.ts";
export { commandOracle, functionOracle, type Oracle, type OracleItem, vaderOracle } from "./oracle.ts";
export { bestOfN, bestOfNKl, type BestOfNPoint, expectedMaxOfN } from "./best_of_n.ts";
export { frontierAt, type FrontierPoint, meanGap, paretoFront } from "./frontier.ts";
export { type PolicyEval, type PolicySample, sampleAndScore, summarize } from "./evaluate.ts";
export { clusteredMeanSe, type Estimate, meanSe } from "./stats.ts";
