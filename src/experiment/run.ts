/**
 * `runExperiment`: the controlled-sentiment experiment end to end — train every method of the grid
 * with checkpoints along the way, evaluate each checkpoint on held-out prompts (reward and KL from
 * the SFT model), sample Best-of-N from the SFT model, and write the results JSON, the markdown
 * report and the frontier figure.
 *
 * An experiment resumes: rerun it with the same options and `out`, and finished parts are read back
 * (Best-of-N, each run's training, each checkpoint's evaluation: one file each, written atomically)
 * while an interrupted run continues from its last checkpoint. Other options over an existing `out`
 * are refused before anything is written.
 *
 * @module
 */

import process from "node:process";
import { Generator } from "../generate/generator.ts";
import { type FileSink, type FileSource, joinPath, localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { type LoadedModel, loadModel } from "../models/load.ts";
import { Scorer } from "../models/score.ts";
import { type BackendPreference, resolveBackend } from "../runtime/backend.ts";
import { Engine } from "../runtime/session.ts";
import { checkpointName } from "../train/checkpoint.ts";
import { Trainer } from "../train/trainer.ts";
import { compare, type RunResult } from "./analysis.ts";
import { bestOfN, type BestOfNPoint } from "./best_of_n.ts";
import { type Budget, checkBudget, checkpointEvery, evalSteps, examplesUsed } from "./budget.ts";
import { checkTrainingData, type EvalPrompt, readEvalPrompts, writeTrainingFile } from "./data.ts";
import { type PolicySample, sampleAndScore, summarize } from "./evaluate.ts";
import { expandGrid, METHODS, type RunSpec } from "./methods.ts";
import type { Oracle } from "./oracle.ts";
import { checkPlotting } from "./plot.ts";
import { type ExperimentResults, writeReport } from "./report.ts";

/** Everything an experiment takes. */
export interface ExperimentOptions {
  /** The SFT model: a directory, a Hub id, or a loaded model. */
  model: string | LoadedModel;
  /** Preference pairs (for the `-pref` methods). */
  pairs: string;
  /** Reward groups (for the `-rw` methods; K = the file's group size, or a divisor of it). */
  groups: string;
  /** Held-out prompts (the first `budget.evalPrompts` are used). */
  prompts: string;
  out: string;
  budget: Budget;
  oracle: Oracle;
  /** Default `auto`. */
  backend?: BackendPreference;
  /** Render `frontier.svg` (needs vega and vega-lite). Default true. */
  figure?: boolean;
  files?: FileSource & FileSink;
  log?: (line: string) => void;
  /** Stops at the next training update or checkpoint evaluation; rerun to continue. */
  signal?: AbortSignal;
  /**
   * Run only every `count`-th run of the grid, starting at `index` (1-based): several processes (or
   * machines) share one `out`, and a last call without `shard` reads everything back and writes
   * the results. Shard 1 also samples Best-of-N. The engines use several cores themselves (wasm: one
   * thread per core, at most 4), so shards pay off with more cores than an engine uses, or machines.
   */
  shard?: { index: number; count: number };
  /**
   * Train and evaluate nothing: write the results of the seeds whose runs are all finished
   * (Best-of-N must be done), to look at an experiment in progress or one stopped early. The results
   * say which seeds and how many runs of the grid they hold.
   */
  partial?: boolean;
}

/** What a shard returns: its runs are on disk, the results are not written yet. */
export interface ShardDone {
  shard: { index: number; count: number };
  runs: number;
}

/** `out` holds an experiment made with other options. */
export class ExperimentMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExperimentMismatchError";
  }
}

/** Raised when the signal stops an experiment; everything done so far is kept. */
export class ExperimentInterrupted extends Error {
  constructor() {
    super("Experiment interrupted: finished parts are saved; rerun the same command to continue");
    this.name = "ExperimentInterrupted";
  }
}

const EXPERIMENT_FILE = "experiment.json";

/** Runs (or resumes) an experiment; returns what `results.json` holds. */
export async function runExperiment(o: ExperimentOptions & { shard?: undefined }): Promise<ExperimentResults>;
/** Runs one shard of an experiment's grid (see {@link ExperimentOptions.shard}). */
export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResults | ShardDone>;
export async function runExperiment(o: ExperimentOptions): Promise<ExperimentResults | ShardDone> {
  const shard = o.shard;
  if (shard && !(Number.isInteger(shard.count) && shard.count >= 1 && shard.index >= 1 && shard.index <= shard.count)) {
    throw new RangeError(`--shard must be i/n with 1 <= i <= n, got ${shard.index}/${shard.count}`);
  }
  const t0 = performance.now(), cpu0 = process.cpuUsage();
  const files = o.files ?? localFiles();
  const log = o.log ?? (() => {});
  const b = o.budget;
  checkBudget(b);
  // Everything that can be wrong with the input is found before anything is written or trained.
  const model = typeof o.model === "string" ? await loadModel(o.model, files) : o.model;
  const methods = b.methods.map((m) => METHODS[m]);
  const data = await checkTrainingData(
    {
      pairs: methods.some((m) => m.data === "pairs") ? o.pairs : null,
      groups: methods.some((m) => m.data === "groups") ? o.groups : null,
    },
    model,
    methods.filter((m) => m.data === "groups").map((m) => m.k),
    files,
  );
  const prompts = await readEvalPrompts(o.prompts, model, b.evalPrompts, files);
  const figure = o.figure ?? true;
  if (figure) await checkPlotting();
  const settings = {
    model: model.hub?.repo ?? model.dir,
    data: { pairs: o.pairs, groups: o.groups, prompts: o.prompts },
    oracle: o.oracle.name,
    budget: { ...b, name: undefined },
  };
  await checkOut(o.out, settings, files);

  const choice = await resolveBackend(o.backend ?? "auto");
  log(`backend: ${choice.backend} (${choice.reason})`);
  const engine = await Engine.create(choice.backend);
  await files.mkdir(o.out);
  await files.writeText(joinPath(o.out, EXPERIMENT_FILE), JSON.stringify(settings, null, 2) + "\n");

  const dataFiles = new Map<string, string>();
  for (const m of methods) {
    const key = `${m.data}-${m.k}`;
    if (dataFiles.has(key)) continue;
    const src = m.data === "pairs" ? o.pairs : o.groups;
    // One pass at most: K = 2 groups come from the same source groups as K = 4 (sourceK each).
    const limit = examplesUsed(b, m.data === "pairs" ? 2 : data.groupK!);
    dataFiles.set(key, await writeTrainingFile(src, m.data, m.k, limit, o.out, files));
  }

  const gen = await Generator.create(model, { engine });
  const sft = await Scorer.create(model, { engine });
  const seconds = { train: 0, evaluate: 0, bestOfN: 0 };
  try {
    const tb = performance.now();
    const bon = o.partial
      ? await savedBestOfN(o.out, b, files)
      : !shard || shard.index === 1
      ? await bestOfNStage(gen, o.oracle, prompts, b, o.out, files, log)
      : [];
    seconds.bestOfN += (performance.now() - tb) / 1000;

    const runs: RunResult[] = [];
    const grid = expandGrid(b.methods, b.betas, b.seeds);
    for (const [i, spec] of grid.entries()) {
      if (shard && i % shard.count !== shard.index - 1) continue;
      if (o.partial) {
        const done = await finishedRun(spec, b, o.out, files);
        if (done) runs.push(done);
        continue;
      }
      if (o.signal?.aborted) throw new ExperimentInterrupted();
      const tag = `[${i + 1}/${grid.length}] ${METHODS[spec.method].label} β=${spec.beta} seed ${spec.seed}`;
      const tt = performance.now();
      const train = await trainStage(spec, model, dataFiles, b, choice.backend, o, files, log, tag);
      seconds.train += (performance.now() - tt) / 1000;
      const te = performance.now();
      const checkpoints = await evaluateStage(spec, gen, sft, o.oracle, prompts, b, o, files);
      seconds.evaluate += (performance.now() - te) / 1000;
      const last = checkpoints[checkpoints.length - 1];
      log(
        `${tag}: KL ${last.kl.mean.toFixed(2)} ± ${last.kl.se.toFixed(2)}, reward ${last.reward.mean.toFixed(3)} ± ${
          last.reward.se.toFixed(3)
        } at step ${last.step}`,
      );
      runs.push({ ...spec, train, checkpoints });
    }

    if (shard) {
      log(`shard ${shard.index}/${shard.count} done (${runs.length} runs): run without --shard to write the results`);
      return { shard, runs: runs.length };
    }
    if (o.partial) {
      // Only whole seeds: a seed with some runs missing would compare methods on different β.
      const whole = b.seeds.filter((seed) =>
        runs.filter((r) => r.seed === seed).length === grid.length / b.seeds.length
      );
      runs.splice(0, runs.length, ...runs.filter((r) => whole.includes(r.seed)));
      if (runs.length === 0) throw new Error(`${o.out}: no seed has all its runs finished yet: nothing to report`);
    }
    if (bon.length === 0) throw new Error(`${o.out}: Best-of-N is not done yet (best_of_n.json): nothing to report`);
    const sftReward = bon.find((p) => p.n === 1)!.reward;
    const cpu = process.cpuUsage(cpu0);
    const results: ExperimentResults = {
      version: 1,
      finishedAt: new Date().toISOString(),
      ...settings,
      budget: b,
      backend: choice.backend,
      backendReason: choice.reason,
      sft: sftReward,
      bestOfN: bon,
      runs,
      ...(runs.length < grid.length
        ? { partial: { runs: runs.length, of: grid.length, seeds: [...new Set(runs.map((r) => r.seed))] } }
        : {}),
      comparisons: compare(runs, [...new Set(runs.map((r) => r.seed))], sftReward.mean),
      timings: {
        seconds: (performance.now() - t0) / 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        ...seconds,
        note: "this session's wall and CPU time; parts read back from an earlier session count as 0",
      },
    };
    await writeReport(results, o.out, files, figure);
    return results;
  } finally {
    await sft.release();
    await gen.release();
  }
}

/** Refuses an `out` that holds an experiment made with other settings. */
async function checkOut(out: string, settings: unknown, files: FileSource): Promise<void> {
  const path = joinPath(out, EXPERIMENT_FILE);
  if (!(await files.exists(path))) return;
  const before = JSON.parse(await files.readText(path));
  if (JSON.stringify(before) !== JSON.stringify(settings)) {
    throw new ExperimentMismatchError(
      `--out ${out} holds an experiment made with other settings (${path}): use a new --out, or the same options to continue it`,
    );
  }
}

async function readJson<T>(path: string, files: FileSource): Promise<T | null> {
  return (await files.exists(path)) ? JSON.parse(await files.readText(path)) as T : null;
}

/** Best-of-N: `bonSamples` SFT samples per prompt, scored once (`best_of_n.json`). */
async function bestOfNStage(
  gen: Generator,
  oracle: Oracle,
  prompts: readonly EvalPrompt[],
  b: Budget,
  out: string,
  files: FileSource & FileSink,
  log: (line: string) => void,
): Promise<BestOfNPoint[]> {
  const path = joinPath(out, "best_of_n.json");
  let saved = await readJson<{ rewardsByPrompt: number[][] }>(path, files);
  if (!saved) {
    log(`Best-of-N: ${b.bonSamples} SFT samples × ${prompts.length} prompts`);
    await gen.setAdapter(null);
    const { samples, seconds } = await sampleAndScore(gen, null, oracle, prompts, {
      samplesPerPrompt: b.bonSamples,
      maxNewTokens: b.maxNewTokens,
      decodePrompts: Math.max(1, Math.floor((b.decodePrompts * b.samplesPerPrompt) / b.bonSamples)),
      seed: 99_991,
      isSft: true,
    });
    const rewardsByPrompt = prompts.map((_, p) => samples.filter((s) => s.prompt === p).map((s) => s.reward));
    saved = { rewardsByPrompt };
    await files.writeText(path, JSON.stringify({ rewardsByPrompt, seconds, samples: samples.slice(0, 64) }) + "\n");
  }
  return bestOfN(saved.rewardsByPrompt, b.bonN);
}

/** Best-of-N as saved, or none. */
async function savedBestOfN(out: string, b: Budget, files: FileSource): Promise<BestOfNPoint[]> {
  const saved = await readJson<{ rewardsByPrompt: number[][] }>(joinPath(out, "best_of_n.json"), files);
  return saved ? bestOfN(saved.rewardsByPrompt, b.bonN) : [];
}

/** A run whose training and every evaluation are on disk, or null. */
async function finishedRun(spec: RunSpec, b: Budget, out: string, files: FileSource): Promise<RunResult | null> {
  const dir = joinPath(out, spec.dir);
  const train = await readJson<RunResult["train"]>(joinPath(dir, "train_summary.json"), files);
  if (!train) return null;
  const checkpoints: RunResult["checkpoints"] = [];
  for (const step of evalSteps(b)) {
    const saved = await readJson<{ eval: RunResult["checkpoints"][number] }>(
      joinPath(dir, "eval", `${checkpointName(step)}.json`),
      files,
    );
    if (!saved) return null;
    checkpoints.push(saved.eval);
  }
  return { ...spec, train, checkpoints };
}

/** Trains one run (or reads back its summary), keeping a checkpoint at every evaluated step. */
async function trainStage(
  spec: RunSpec,
  model: LoadedModel,
  dataFiles: Map<string, string>,
  b: Budget,
  backend: BackendPreference,
  o: ExperimentOptions,
  files: FileSource & FileSink,
  log: (line: string) => void,
  tag: string,
): Promise<RunResult["train"]> {
  const dir = joinPath(o.out, spec.dir);
  const summaryPath = joinPath(dir, "train_summary.json");
  const done = await readJson<RunResult["train"]>(summaryPath, files);
  if (done) return done;
  const m = METHODS[spec.method];
  const trainer = await Trainer.create({
    model,
    data: dataFiles.get(`${m.data}-${m.k}`)!,
    out: dir,
    loss: m.loss,
    beta: spec.beta,
    betaR: spec.beta,
    lr: b.lr,
    schedule: "constant",
    warmupSteps: b.warmupSteps,
    loraR: b.loraR,
    batchSize: b.sequencesPerUpdate / m.k,
    maxSteps: b.steps,
    seed: spec.seed,
    backend,
    checkpointEvery: checkpointEvery(b),
    keepCheckpoints: 0,
    resume: true,
    signal: o.signal,
  });
  const s = await trainer.train();
  if (s.interrupted) throw new ExperimentInterrupted();
  const train = {
    steps: s.steps,
    seconds: s.seconds,
    referenceSeconds: s.referenceSeconds,
    tokensPerSecond: s.tokensPerSecond,
    finalLoss: s.finalLoss,
  };
  log(`${tag}: trained ${s.steps} updates in ${s.seconds.toFixed(0)} s (${s.tokensPerSecond.toFixed(0)} tokens/s)`);
  await files.writeText(summaryPath, JSON.stringify(train, null, 2) + "\n");
  return train;
}

/** Evaluates every checkpoint of a run (or reads back those already done). */
async function evaluateStage(
  spec: RunSpec,
  gen: Generator,
  sft: Scorer,
  oracle: Oracle,
  prompts: readonly EvalPrompt[],
  b: Budget,
  o: ExperimentOptions,
  files: FileSource & FileSink,
): Promise<RunResult["checkpoints"]> {
  const dir = joinPath(o.out, spec.dir);
  const out: RunResult["checkpoints"] = [];
  for (const step of evalSteps(b)) {
    const path = joinPath(dir, "eval", `${checkpointName(step)}.json`);
    let saved = await readJson<{ eval: RunResult["checkpoints"][number] }>(path, files);
    if (!saved) {
      if (o.signal?.aborted) throw new ExperimentInterrupted();
      const ckpt = joinPath(dir, "checkpoints", checkpointName(step));
      await gen.setAdapter(await readAdapter(ckpt, files, gen.model.config));
      // The same sampling seed for every checkpoint of a seed: common random numbers along training.
      const { samples, seconds } = await sampleAndScore(gen, sft, oracle, prompts, {
        samplesPerPrompt: b.samplesPerPrompt,
        maxNewTokens: b.maxNewTokens,
        decodePrompts: b.decodePrompts,
        seed: 1_000 * spec.seed + 17,
      });
      saved = { eval: { step, ...summarize(samples, seconds) } };
      await files.mkdir(joinPath(dir, "eval"));
      await files.writeText(path, JSON.stringify({ ...saved, samples: samples satisfies PolicySample[] }) + "\n");
    }
    out.push(saved.eval);
  }
  return out;
}
