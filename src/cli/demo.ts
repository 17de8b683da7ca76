/**
 * `deno task demo`: the main job. Tunes an EXO-pref LoRA adapter on the bundled review model
 * (models/review-gpt2) with the bundled preference pairs (data/pairs.jsonl), then shows the effect
 * on the held-out test pairs (data/pairs-test.jsonl) — rewards/accuracies and rewards/margins before
 * and after — plus a few completions of held-out prompts from the base model and the tuned one.
 *
 * @module
 */

import process from "node:process";
import { encodeDataset, type EncodedPair } from "../data/encode.ts";
import { readDataset } from "../data/formats.ts";
import { localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { loadModel } from "../models/load.ts";
import { Generator } from "../generate/generator.ts";
import { sampleAndScore, summarize } from "../experiment/evaluate.ts";
import { type Oracle, vaderOracle } from "../experiment/oracle.ts";
import type { LoadedModel } from "../models/load.ts";
import { Scorer } from "../models/score.ts";
import { flag, integer, text } from "../options/table.ts";
import { resolveBackend } from "../runtime/backend.ts";
import { backendOption } from "../options/common.ts";
import { Engine } from "../runtime/session.ts";
import { evaluatePairs, type PairEvaluation, scorePairs } from "../train/evaluate.ts";
import { TRAIN_OPTIONS, Trainer, type TrainSummary } from "../train/trainer.ts";
import { bundled, stamp } from "./_bundled.ts";
import { isInputError } from "./errors.ts";
import { flagMessage, helpText, readFlags } from "./flags.ts";

/** Samples 4 completions per prompt and scores them with VADER (the bundled data's oracle). */
async function sampleRewards(
  gen: Generator,
  prompts: string[],
  vader: Oracle,
): Promise<{ mean: number; texts: string[] }> {
  const texts: string[] = [];
  let sum = 0;
  for (let i = 0; i < prompts.length; i += 16) {
    const chunk = prompts.slice(i, i + 16);
    const res = await gen.generate(chunk, { maxNewTokens: 24, temperature: 0.8, numSamples: 4, seed: 1234 + i });
    const rewards = await vader.score(res.sequences.map((s) => ({ prompt: chunk[s.prompt], completion: s.text })));
    for (const [j, s] of res.sequences.entries()) {
      texts.push(s.text);
      sum += rewards[j];
    }
  }
  return { mean: sum / Math.max(1, texts.length), texts };
}

/**
 * KL(π_tuned ‖ π_base) per sequence and the reward at temperature 1, from 4 samples per prompt of
 * the tuned model itself (where the estimate mean(log π_tuned − log π_base) is unbiased).
 */
async function tunedKl(gen: Generator, model: LoadedModel, engine: Engine, prompts: string[], vader: Oracle) {
  const base = await Scorer.create(model, { engine });
  try {
    const evalPrompts = prompts.map((text) => ({ text, ids: model.tokenizer.encode(text) }));
    const { samples, seconds } = await sampleAndScore(gen, base, vader, evalPrompts, {
      samplesPerPrompt: 4,
      maxNewTokens: 24,
      decodePrompts: 16,
      seed: 4321,
    });
    const e = summarize(samples, seconds);
    return { kl: e.kl, rewardT1: e.reward };
  } finally {
    await base.release();
  }
}

/** The demo's flags: the trainer's own for what it passes on (with the demo's defaults), and its own. */
const FLAGS = {
  // The demo also scores and samples on an inference engine: the runtime's backends, not ort-training.
  backend: backendOption(),
  threads: TRAIN_OPTIONS.threads,
  epochs: { ...TRAIN_OPTIONS.epochs, default: 2 },
  lr: { ...TRAIN_OPTIONS.lr, default: 1e-3 },
  maxSteps: TRAIN_OPTIONS.maxSteps,
  out: text({ default: null, metavar: "DIR", defaultText: "runs/demo-<time>", help: "output directory" }),
  samples: integer({ default: 3, min: 0, help: "completions to print, base and tuned" }),
  rewardPrompts: integer({ default: 64, min: 1, help: "held-out prompts sampled for the oracle reward" }),
  json: flag({ help: "print one JSON object with every result" }),
  help: flag({ help: "show this help" }),
} as const;

const help = () =>
  helpText(
    "Usage: deno task demo [options]\n\nTunes an EXO-pref adapter on models/review-gpt2 with data/pairs.jsonl and compares the\n" +
      "held-out pairs (data/pairs-test.jsonl) before and after.",
    FLAGS,
  );

function row(name: string, before: number, after: number, digits = 3): string {
  const d = after - before;
  return `  ${name.padEnd(20)} ${before.toFixed(digits).padStart(9)} ${after.toFixed(digits).padStart(9)} ${
    (d >= 0 ? "+" : "") + d.toFixed(digits)
  }`;
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    values = readFlags(FLAGS, argv);
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}`);
    return 2;
  }
  if (values === "help") {
    console.log(help());
    return 0;
  }
  // Relative to the working directory: an installed package's own folder is no place for runs.
  const out = values.out ?? `runs/demo-${stamp()}`;
  const say = (s: string) => console.error(s);
  const t0 = performance.now();
  try {
    const files = localFiles();
    // vader-sentiment is an optional dependency used by the demo only (the library does not need it).
    const vader = await vaderOracle();
    const model = await loadModel(bundled("models/review-gpt2"), files);
    const test = await readDataset(bundled("data/pairs-test.jsonl"), { files, vocabSize: model.config.vocabSize });
    const enc = encodeDataset(test, model.tokenizer, { maxLength: model.config.maxPositions });
    const heldOut = enc.examples as EncodedPair[];
    const promptFile = await readDataset(bundled("data/prompts-test.jsonl"), { files, kind: "prompts" });
    const heldOutPrompts = promptFile.records.map((r) => r.prompt as string);
    const choice = await resolveBackend(values.backend);
    say(`exo-tune demo: EXO-pref LoRA on review-gpt2 (${(3.7).toFixed(1)}M params), backend ${choice.backend}`);
    say(`  (${choice.reason})`);
    const engine = await Engine.create(choice.backend, { threads: values.threads ?? undefined });
    const reference = await scorePairs(model, heldOut, null, { engine });
    const before = await evaluatePairs(model, heldOut, null, { engine, reference });

    const trainer = await Trainer.create({
      model,
      data: bundled("data/pairs.jsonl"),
      out,
      loss: "exo-pref",
      beta: 0.1,
      lr: values.lr,
      epochs: values.epochs,
      maxSteps: values.maxSteps ?? undefined,
      batchSize: 8,
      loraR: 8,
      schedule: "linear",
      warmupSteps: 10,
      backend: choice.backend,
      threads: values.threads ?? undefined,
      log: say,
      progress: { write: (t) => process.stderr.write(t), isTTY: Boolean(process.stderr.isTTY) },
    });
    say(`training on ${trainer.options.data} -> ${out}`);
    const summary = await trainer.train();
    const adapter = await readAdapter(out, files, model.config);
    const after = await evaluatePairs(model, heldOut, adapter, { engine, reference });

    // The effect on what the model writes: K = 4 samples per held-out prompt (temperature 0.8, as the
    // bundled data was made), scored by the data's oracle (VADER compound of prompt + completion).
    const gen = await Generator.create(model, { engine, adapter: null });
    const rewardPrompts = heldOutPrompts.slice(0, values.rewardPrompts);
    const base = await sampleRewards(gen, rewardPrompts, vader);
    await gen.setAdapter(adapter);
    const tuned = await sampleRewards(gen, rewardPrompts, vader);
    const kl = await tunedKl(gen, model, engine, rewardPrompts, vader);
    await gen.release();
    const samples = rewardPrompts.slice(0, values.samples).map((prompt, i) => ({
      prompt,
      base: base.texts[i * 4],
      tuned: tuned.texts[i * 4],
    }));
    const reward = {
      prompts: rewardPrompts.length,
      samplesPerPrompt: 4,
      base: base.mean,
      tuned: tuned.mean,
      // At temperature 1, from the tuned model's own samples (the KL estimate's setting).
      tunedT1: kl.rewardT1,
      kl: kl.kl,
    };
    const seconds = (performance.now() - t0) / 1000;
    if (values.json) {
      console.log(
        JSON.stringify({
          backend: choice.backend,
          out,
          before,
          after,
          reward,
          train: printable(summary),
          samples,
          seconds,
        }),
      );
      return 0;
    }
    const keys: (keyof PairEvaluation)[] = [
      "rewards/accuracies",
      "rewards/margins",
      "rewards/chosen",
      "rewards/rejected",
      "logps/accuracy",
    ];
    const lines = [
      "",
      `Held-out test pairs (${before.pairs}, data/pairs-test.jsonl):      before     after    change`,
      ...keys.map((k) => row(k, before[k] as number, after[k] as number)),
      "",
      "  rewards/* = beta * (log pi_tuned - log pi_base): 0 before training by definition.",
      "  logps/accuracy = how often the model itself prefers the chosen completion.",
      "",
      `Mean oracle reward (VADER) of ${reward.samplesPerPrompt} samples per held-out prompt (${reward.prompts} prompts, T = 0.8):`,
      row("reward", reward.base, reward.tuned),
      `  KL(tuned || base) = ${kl.kl.mean.toFixed(2)} ± ${kl.kl.se.toFixed(2)} nats per sequence, at reward ${
        kl.rewardT1.mean.toFixed(3)
      } ± ${kl.rewardT1.se.toFixed(3)}`,
      `  (mean log pi_tuned - log pi_base over 4 samples of each prompt from the tuned model at T = 1, where`,
      "  the estimate is unbiased; ± one standard error over prompts. Best-of-4 sits at KL 0.64: see experiment.)",
      "",
    ];
    for (const s of samples) {
      lines.push(`prompt: ${JSON.stringify(s.prompt)}`);
      lines.push(`  base : ${JSON.stringify(s.base)}`);
      lines.push(`  tuned: ${JSON.stringify(s.tuned)}`);
    }
    lines.push(
      "",
      `Trained ${summary.steps} steps (${summary.examples} pairs, ${trainer.options.epochs} epochs) in ${
        summary.seconds.toFixed(0)
      } s at ${summary.tokensPerSecond.toFixed(0)} tokens/s on ${summary.backend}; demo total ${seconds.toFixed(0)} s.`,
      `Adapter (PEFT format): ${out}/adapter_config.json, ${out}/adapter_model.safetensors`,
      `Metrics: ${out}/metrics.jsonl`,
    );
    console.log(lines.join("\n"));
    return 0;
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}`);
    return isInputError(e) ? 2 : 1;
  }
}

/** The summary without the in-memory adapter (it is in the run's directory). */
function printable(summary: TrainSummary): Omit<TrainSummary, "trained"> {
  const { trained: _trained, ...rest } = summary;
  return rest;
}
