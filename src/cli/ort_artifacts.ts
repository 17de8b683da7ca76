/**
 * `deno task cli ort-artifacts --model DIR --out DIR [options]`: writes the four artifacts ONNX
 * Runtime's training API loads (checkpoint, training, eval and optimizer models) for preference
 * training of a LoRA adapter, plus PEFT's `adapter_config.json`. `--check DIR` checks a directory
 * of artifacts (ours or made by Python's onnxruntime-training) against the runtime's contract.
 *
 * Exit codes: 0 done, 2 bad input (nothing written), 1 a failure.
 *
 * @module
 */

import { localFiles } from "../io/files.ts";
import { initLoraAdapter } from "../lora/adapter.ts";
import { createLoraConfig } from "../lora/config.ts";
import { loadModel } from "../models/load.ts";
import { lrSchedule } from "../optim/schedule.ts";
import {
  choice,
  flag,
  integer,
  OptionError,
  type OptionsInput,
  pickOptions,
  resolveOptions,
  text,
} from "../options/table.ts";
import { isRewardLoss } from "../train/preference_graph.ts";
import { TRAIN_OPTIONS } from "../train/options.ts";
import { Rng } from "../util/rng.ts";
import {
  ARTIFACT_FILES,
  checkArtifacts,
  emitArtifacts,
  readArtifacts,
  readInitAdapter,
  writeArtifacts,
} from "../ort_training/mod.ts";
import { isInputError } from "./errors.ts";
import { flagMessage, helpText, parseFlags, UsageError } from "./flags.ts";

/** The trainer's options that shape the artifacts (checked as `train` checks them), and the command's own. */
const FLAGS = {
  ...pickOptions(TRAIN_OPTIONS, [
    "model",
    "revision",
    "out",
    "loss",
    "beta",
    "betaR",
    "epsilon",
    "logitTemperature",
    "loraR",
    "loraAlpha",
    "target",
    "rslora",
    "initAdapter",
    "seed",
    "optimizer",
    "lr",
    "weightDecay",
    "schedule",
    "warmupSteps",
    "gradAccum",
    "maxGradNorm",
  ]),
  out: { ...TRAIN_OPTIONS.out, help: "directory for the artifacts and adapter_config.json (new or empty)" },
  layout: choice(["exo", "python"], {
    default: "exo",
    help:
      "exo: frozen weights inside the models, only the LoRA matrices in the checkpoint; python: every weight in the checkpoint and LoRA names with the adapter name, as onnxruntime-training's generate_artifacts",
  }),
  k: integer({ default: null, min: 2, help: "completions per group (required by the -rw losses)" }),
  steps: integer({
    default: 1000,
    min: 1,
    help: "updates the baked learning-rate table covers (later updates keep the last rate)",
  }),
  check: text({ default: null, metavar: "DIR", help: "check a directory of artifacts and print what it holds" }),
  json: flag({ help: "print the result as JSON" }),
  help: flag({ help: "show this help" }),
} as const;

const help = () =>
  helpText(
    `Usage: deno task cli ort-artifacts --model DIR --out DIR [options]
       deno task cli ort-artifacts --check DIR

Writes checkpoint, training_model.onnx, eval_model.onnx, optimizer_model.onnx and
adapter_config.json into --out: what ONNX Runtime's training API (TrainingSession) loads.
--grad-accum N: the optimizer model divides the gradients summed over N micro-batches by N.`,
    FLAGS,
  );

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    // --model and --out are required unless --check: checked below.
    values = parseFlags(FLAGS, argv, { requireAll: false });
    if (!values.help && values.check === undefined) {
      for (const key of ["model", "out"] as const) {
        if (values[key] === undefined) throw new UsageError(key, "is required (or --check DIR)");
      }
    }
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}\n\n${help()}`);
    return 2;
  }
  if (values.help) {
    console.log(help());
    return 0;
  }
  const files = localFiles();
  try {
    if (values.check !== undefined && values.check !== null) {
      const dir = values.check;
      const info = checkArtifacts(await readArtifacts(dir, files), dir);
      const summary = {
        dir,
        version: info.checkpoint.version,
        trainable: info.params.map((p) => ({ name: p.name, shape: p.shape, peftKey: p.key })),
        frozen: info.checkpoint.frozen.length,
        optimizerGroup: info.checkpoint.optimizer ? { step: info.checkpoint.optimizer.step } : null,
        userInputs: info.userInputs.map((v) => v.name),
        userOutputs: info.userOutputs,
        evalModel: info.eval !== null,
        optimizer: info.optimizer?.kind ?? null,
      };
      if (values.json) console.log(JSON.stringify(summary));
      else {
        console.log(
          `${dir}: ORT training artifacts, checkpoint version ${summary.version}, ${summary.trainable.length} trainable and ${summary.frozen} frozen parameters`,
        );
        console.log(`  user inputs: ${summary.userInputs.join(", ")}; outputs: ${summary.userOutputs.join(", ")}`);
        console.log(`  eval model: ${summary.evalModel ? "yes" : "no"}; optimizer: ${summary.optimizer ?? "none"}`);
        const nonPeft = summary.trainable.filter((p) => !p.peftKey).length;
        console.log(
          nonPeft
            ? `  ${nonPeft} trainable parameters are not PEFT LoRA names: the preference trainer cannot export them`
            : "  every trainable parameter is a PEFT LoRA matrix",
        );
      }
      return 0;
    }
    // Every option checked by its table entry (the trainer's, for the training options), defaults filled in.
    const o = resolveOptions(FLAGS, values as OptionsInput<typeof FLAGS>);
    if (isRewardLoss(o.loss) && o.k === null) {
      throw new OptionError(
        "k",
        (n) => `${n("loss")} ${o.loss} needs ${n("k")}, the completions per group (an integer >= 2)`,
      );
    }
    if (await files.exists(o.out) && (await files.list(o.out)).length > 0) {
      throw new OptionError("out", (n) => `${n("out")} ${o.out} is not empty; choose a new directory`);
    }
    const model = await loadModel(o.model as string, files, { hub: { revision: o.revision } });
    const adapter = o.initAdapter ? await readInitAdapter(o.initAdapter, files, model.config) : initLoraAdapter(
      model.config,
      createLoraConfig(model.config, {
        r: o.loraR,
        alpha: o.loraAlpha ?? undefined,
        targetModules: o.target ?? undefined,
        useRslora: o.rslora,
        baseModelNameOrPath: model.hub?.repo ?? model.dir,
      }),
      new Rng(o.seed),
    );
    const { layout, steps } = o;
    const schedule = lrSchedule({ kind: o.schedule, lr: o.lr, warmupSteps: o.warmupSteps, totalSteps: steps });
    const params = new Map([...adapter.tensors].map(([key, t]) => [key, t.data as Float32Array]));
    const emitted = emitArtifacts({
      model,
      lora: adapter.config,
      params,
      loss: {
        loss: o.loss,
        betaPi: o.beta,
        betaR: o.betaR,
        eps: o.epsilon,
        temperature: o.logitTemperature,
        k: isRewardLoss(o.loss) ? o.k! : undefined,
      },
      optimizer: {
        kind: o.optimizer,
        lrTable: Float32Array.from({ length: steps }, (_, i) => schedule(i)),
        gradAccum: o.gradAccum,
        maxGradNorm: o.maxGradNorm,
        weightDecay: o.weightDecay,
      },
      layout,
    });
    checkArtifacts(emitted.bytes, o.out);
    await writeArtifacts(o.out, emitted.bytes, adapter.config, files);
    const sizes = Object.fromEntries(
      Object.entries(ARTIFACT_FILES).map((
        [key, name],
      ) => [name, emitted.bytes[key as keyof typeof emitted.bytes].byteLength]),
    );
    if (values.json) {
      console.log(JSON.stringify({ out: o.out, layout, params: emitted.params.length, bytes: sizes }));
    } else {
      console.log(
        `wrote ${
          Object.keys(sizes).join(", ")
        } and adapter_config.json to ${o.out} (${layout} layout, ${emitted.params.length} LoRA matrices)`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`error: ${flagMessage(e, FLAGS)}`);
    return isInputError(e) ? 2 : 1;
  }
}
