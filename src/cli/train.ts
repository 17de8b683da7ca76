/**
 * `deno task cli train --model DIR --data FILE --out DIR [options]`: tunes a LoRA adapter on
 * preference data and writes it in PEFT format.
 *
 * Exit codes: 0 done (or interrupted with a checkpoint written), 2 bad input (nothing written),
 * 1 a failure during training (the last good checkpoint is kept).
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { NonFiniteLossError, Trainer, type TrainOptions } from "../train/trainer.ts";
import type { LossKind } from "../train/preference_graph.ts";
import type { BackendPreference } from "../runtime/backend.ts";
import type { ScheduleKind } from "../optim/schedule.ts";
import { isInputError } from "./errors.ts";

const HELP = `Usage: deno task cli train --model DIR --data FILE --out DIR [options]

  --model DIR           model directory, or Hugging Face Hub id (org/name)
  --revision REV        Hub branch, tag or commit (default main)

  --loss exo-pref|exo-rw|dpo-pref|dpo-rw   (default exo-pref)
  --beta F              beta_pi, TRL's beta (default 0.1)
  --beta-r F            reward temperature of the -rw losses (default 0.1)
  --epsilon F           EXO-pref label smoothing (default 1e-3)
  --logit-temperature F logits / tau before log-softmax (default 1)
  --lora-r N            LoRA rank (default 8)
  --lora-alpha F        LoRA alpha (default 2 * r)
  --target a,b,...      PEFT target modules (default: all attention and MLP projections)
  --rslora              alpha / sqrt(r) scaling
  --init-adapter DIR    start from an existing PEFT adapter
  --optimizer adamw|sgd (default adamw)
  --lr F                peak learning rate (default 5e-4)
  --weight-decay F      (default 0)
  --schedule constant|linear|cosine (default linear)
  --warmup-steps N      (default 0)
  --batch-size N        examples per micro-batch (default 8)
  --grad-accum N        micro-batches per update (default 1)
  --max-grad-norm F     global clip, 0 disables (default 1.0)
  --epochs N            (default 1)
  --max-steps N         stop after N updates
  --seed N              (default 0)
  --backend auto|webgpu|wasm|ort-training (default auto; ort-training: ORT Web 1.19.2's
                        TrainingSession on wasm, never chosen by auto; --init-adapter may
                        then be an ORT training artifacts directory, whose model is trained)
  --checkpoint-every N  also checkpoint every N updates (default: only at the end / on Ctrl-C)
  --keep-checkpoints N  checkpoints kept in --out/checkpoints, 0 = all (default 2)
  --resume              continue from the newest checkpoint in --out
  --json                print one JSON summary object on stdout at the end`;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === "" || Number.isNaN(x)) throw new RangeError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return x;
}

const FLAGS = new Set(["--rslora", "--resume", "--json", "--help"]);

/**
 * `--lr -1` -> `--lr=-1`: node's parseArgs refuses an option value that starts with a dash, which
 * would hide the real problem (a negative number) behind an "ambiguous argument" message.
 */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], next = argv[i + 1];
    if (/^--[a-z-]+$/.test(a) && !FLAGS.has(a) && next !== undefined && /^-(\d|\.\d|inf)/i.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Parses the command line into {@link TrainOptions} (throws RangeError on bad values). */
export function parseTrainArgs(argv: string[]): TrainOptions & { json: boolean; help: boolean } {
  const { values } = parseArgs({
    args: joinNegativeValues(argv),
    strict: true,
    options: {
      model: { type: "string" },
      revision: { type: "string" },
      data: { type: "string" },
      out: { type: "string" },
      loss: { type: "string" },
      beta: { type: "string" },
      "beta-r": { type: "string" },
      epsilon: { type: "string" },
      "logit-temperature": { type: "string" },
      "lora-r": { type: "string" },
      "lora-alpha": { type: "string" },
      target: { type: "string" },
      rslora: { type: "boolean" },
      "init-adapter": { type: "string" },
      optimizer: { type: "string" },
      lr: { type: "string" },
      "weight-decay": { type: "string" },
      schedule: { type: "string" },
      "warmup-steps": { type: "string" },
      "batch-size": { type: "string" },
      "grad-accum": { type: "string" },
      "max-grad-norm": { type: "string" },
      epochs: { type: "string" },
      "max-steps": { type: "string" },
      seed: { type: "string" },
      backend: { type: "string" },
      "checkpoint-every": { type: "string" },
      "keep-checkpoints": { type: "string" },
      resume: { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return { model: "", data: "", out: "", json: false, help: true };
  for (const req of ["model", "data", "out"] as const) {
    if (!values[req]) throw new RangeError(`--${req} is required\n\n${HELP}`);
  }
  return {
    model: values.model!,
    revision: values.revision,
    data: values.data!,
    out: values.out!,
    loss: values.loss as LossKind | undefined,
    beta: num("beta", values.beta),
    betaR: num("beta-r", values["beta-r"]),
    epsilon: num("epsilon", values.epsilon),
    logitTemperature: num("logit-temperature", values["logit-temperature"]),
    loraR: num("lora-r", values["lora-r"]),
    loraAlpha: num("lora-alpha", values["lora-alpha"]),
    target: values.target?.split(",").map((s) => s.trim()).filter(Boolean),
    rslora: values.rslora,
    initAdapter: values["init-adapter"],
    optimizer: values.optimizer as "adamw" | "sgd" | undefined,
    lr: num("lr", values.lr),
    weightDecay: num("weight-decay", values["weight-decay"]),
    schedule: values.schedule as ScheduleKind | undefined,
    warmupSteps: num("warmup-steps", values["warmup-steps"]),
    batchSize: num("batch-size", values["batch-size"]),
    gradAccum: num("grad-accum", values["grad-accum"]),
    maxGradNorm: num("max-grad-norm", values["max-grad-norm"]),
    epochs: num("epochs", values.epochs),
    maxSteps: num("max-steps", values["max-steps"]),
    seed: num("seed", values.seed),
    backend: values.backend as BackendPreference | undefined,
    checkpointEvery: num("checkpoint-every", values["checkpoint-every"]),
    keepCheckpoints: num("keep-checkpoints", values["keep-checkpoints"]),
    resume: values.resume,
    json: values.json ?? false,
    help: false,
  };
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseTrainArgs>;
  try {
    args = parseTrainArgs(argv);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 2;
  }
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error("\ninterrupt: finishing the current step, writing a checkpoint (Ctrl-C again to quit at once)");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  const log = (line: string) => console.error(line);
  let trainer: Trainer;
  try {
    trainer = await Trainer.create({
      ...args,
      log,
      signal: controller.signal,
      progress: { write: (t) => process.stderr.write(t), isTTY: Boolean(process.stderr.isTTY) },
    });
  } catch (e) {
    process.off("SIGINT", onSigint);
    console.error(`error: ${(e as Error).message}`);
    return isInputError(e) ? 2 : 1;
  }
  try {
    const summary = await trainer.train();
    if (args.json) console.log(JSON.stringify(summary));
    else {
      console.error(
        `${summary.interrupted ? "interrupted after" : "done:"} ${summary.steps} steps, loss ${
          summary.finalLoss?.toFixed(4)
        }, ${summary.tokensPerSecond.toFixed(0)} tokens/s on ${summary.backend}; adapter in ${summary.adapter}`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    if (e instanceof NonFiniteLossError) return 1;
    return isInputError(e) ? 2 : 1;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
