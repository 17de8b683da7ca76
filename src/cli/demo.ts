/**
 * `deno task demo`: the main job. Tunes an EXO-pref LoRA adapter on the bundled review model
 * (models/review-gpt2) with the bundled preference pairs (data/pairs.jsonl), then shows the effect
 * on the held-out test pairs (data/pairs-test.jsonl) — rewards/accuracies and rewards/margins before
 * and after — plus a few completions of held-out prompts from the base model and the tuned one.
 *
 * @module
 */

import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { encodeDataset, type EncodedPair } from "../data/encode.ts";
import { readDataset } from "../data/formats.ts";
import { localFiles } from "../io/files.ts";
import { readAdapter } from "../lora/adapter.ts";
import { loadModel } from "../models/load.ts";
import { Generator } from "../generate/generator.ts";
import { type BackendPreference, resolveBackend } from "../runtime/backend.ts";
import { Engine } from "../runtime/session.ts";
import { evaluatePairs, type PairEvaluation, scorePairs } from "../train/evaluate.ts";
import { Trainer } from "../train/trainer.ts";
import { isInputError } from "./errors.ts";

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

const HELP = `Usage: deno task demo [--backend auto|webgpu|wasm] [--epochs N] [--lr F] [--max-steps N] [--out DIR] [--json]

Tunes an EXO-pref adapter on models/review-gpt2 with data/pairs.jsonl and compares the held-out
pairs (data/pairs-test.jsonl) before and after.`;

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}

function row(name: string, before: number, after: number, digits = 3): string {
  const d = after - before;
  return `  ${name.padEnd(20)} ${before.toFixed(digits).padStart(9)} ${after.toFixed(digits).padStart(9)} ${
    (d >= 0 ? "+" : "") + d.toFixed(digits)
  }`;
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      backend: { type: "string", default: "auto" },
      epochs: { type: "string", default: "2" },
      lr: { type: "string", default: "2e-3" },
      "max-steps": { type: "string" },
      out: { type: "string" },
      samples: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const out = values.out ?? root(`runs/demo-${stamp()}`);
  const say = (s: string) => console.error(s);
  const t0 = performance.now();
  try {
    const files = localFiles();
    const model = await loadModel(root("models/review-gpt2"), files);
    const test = await readDataset(root("data/pairs-test.jsonl"), { files, vocabSize: model.config.vocabSize });
    const enc = encodeDataset(test, model.tokenizer, { maxLength: model.config.maxPositions });
    const heldOut = enc.examples as EncodedPair[];
    const choice = await resolveBackend(values.backend as BackendPreference);
    say(`exo-tune demo: EXO-pref LoRA on review-gpt2 (${(3.7).toFixed(1)}M params), backend ${choice.backend}`);
    say(`  (${choice.reason})`);
    const engine = await Engine.create(choice.backend);
    const reference = await scorePairs(model, heldOut, null, { engine });
    const before = await evaluatePairs(model, heldOut, null, { engine, reference });

    const trainer = await Trainer.create({
      model,
      data: root("data/pairs.jsonl"),
      out,
      loss: "exo-pref",
      beta: 0.1,
      lr: Number(values.lr),
      epochs: Number(values.epochs),
      maxSteps: values["max-steps"] ? Number(values["max-steps"]) : undefined,
      batchSize: 8,
      loraR: 8,
      schedule: "linear",
      warmupSteps: 10,
      backend: choice.backend,
      log: say,
      progress: { write: (t) => process.stderr.write(t), isTTY: Boolean(process.stderr.isTTY) },
    });
    say(`training on ${trainer.options.data} -> ${out}`);
    const summary = await trainer.train();
    const adapter = await readAdapter(out, files, model.config);
    const after = await evaluatePairs(model, heldOut, adapter, { engine, reference });

    const samples: { prompt: string; base: string; tuned: string }[] = [];
    const nSamples = Number(values.samples);
    if (nSamples > 0) {
      const prompts = heldOut.slice(0, nSamples).map((p) => model.tokenizer.decode(p.promptIds));
      const gen = await Generator.create(model, { engine, adapter: null });
      const opts = { maxNewTokens: 24, temperature: 0.8, seed: 2024 };
      const base = await gen.generate(prompts, opts);
      await gen.setAdapter(adapter);
      const tuned = await gen.generate(prompts, opts);
      await gen.release();
      prompts.forEach((p, i) => samples.push({ prompt: p, base: base.sequences[i].text, tuned: tuned.sequences[i].text }));
    }
    const seconds = (performance.now() - t0) / 1000;
    if (values.json) {
      console.log(JSON.stringify({ backend: choice.backend, out, before, after, train: summary, samples, seconds }));
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
    console.error(`error: ${(e as Error).message}`);
    return isInputError(e) ? 2 : 1;
  }
}
