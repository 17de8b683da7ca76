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

import { parseArgs } from "node:util";
import { localFiles } from "../io/files.ts";
import { initLoraAdapter } from "../lora/adapter.ts";
import { createLoraConfig } from "../lora/config.ts";
import { loadModel } from "../models/load.ts";
import { lrSchedule, type ScheduleKind } from "../optim/schedule.ts";
import { isRewardLoss, type LossKind } from "../train/preference_graph.ts";
import { resolveTrainOptions } from "../train/trainer.ts";
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

const HELP = `Usage: deno task cli ort-artifacts --model DIR --out DIR [options]
       deno task cli ort-artifacts --check DIR

Writes checkpoint, training_model.onnx, eval_model.onnx, optimizer_model.onnx and
adapter_config.json into --out: what ONNX Runtime's training API (TrainingSession) loads.

  --layout exo|python   exo: frozen weights inside the models, only the LoRA matrices in the
                        checkpoint (default); python: every weight in the checkpoint and LoRA
                        names with the adapter name, as onnxruntime-training's generate_artifacts
  --loss exo-pref|exo-rw|dpo-pref|dpo-rw (default exo-pref)
  --k N                 completions per group (required by the -rw losses)
  --beta F, --beta-r F, --epsilon F, --logit-temperature F   (as for train)
  --lora-r N, --lora-alpha F, --target a,b,..., --rslora, --init-adapter DIR, --seed N
  --optimizer adamw|sgd (default adamw)
  --lr F, --weight-decay F, --schedule constant|linear|cosine, --warmup-steps N
  --steps N             updates the baked learning-rate table covers (default 1000; later
                        updates keep the last rate)
  --grad-accum N        micro-batches summed per update (the optimizer divides by N)
  --max-grad-norm F     global clip in the optimizer model, 0 disables (default 1.0)
  --check DIR           check a directory of artifacts and print what it holds
  --json                print the result as JSON`;

function num(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === "" || Number.isNaN(x)) throw new RangeError(`--${name} must be a number, got ${JSON.stringify(v)}`);
  return x;
}

/** CLI entry. */
export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        model: { type: "string" },
        out: { type: "string" },
        check: { type: "string" },
        layout: { type: "string" },
        loss: { type: "string" },
        k: { type: "string" },
        beta: { type: "string" },
        "beta-r": { type: "string" },
        epsilon: { type: "string" },
        "logit-temperature": { type: "string" },
        "lora-r": { type: "string" },
        "lora-alpha": { type: "string" },
        target: { type: "string" },
        rslora: { type: "boolean" },
        "init-adapter": { type: "string" },
        seed: { type: "string" },
        optimizer: { type: "string" },
        lr: { type: "string" },
        "weight-decay": { type: "string" },
        schedule: { type: "string" },
        "warmup-steps": { type: "string" },
        steps: { type: "string" },
        "grad-accum": { type: "string" },
        "max-grad-norm": { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean" },
      },
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const files = localFiles();
  try {
    if (values.check !== undefined) {
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
    if (!values.model || !values.out) throw new RangeError(`--model and --out are required\n\n${HELP}`);
    const layout = values.layout ?? "exo";
    if (layout !== "exo" && layout !== "python") throw new RangeError(`--layout must be exo or python, got ${layout}`);
    const o = resolveTrainOptions({
      model: values.model,
      data: "",
      out: values.out,
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
      seed: num("seed", values.seed),
      optimizer: values.optimizer as "adamw" | "sgd" | undefined,
      lr: num("lr", values.lr),
      weightDecay: num("weight-decay", values["weight-decay"]),
      schedule: values.schedule as ScheduleKind | undefined,
      warmupSteps: num("warmup-steps", values["warmup-steps"]),
      gradAccum: num("grad-accum", values["grad-accum"]),
      maxGradNorm: num("max-grad-norm", values["max-grad-norm"]),
    });
    const steps = num("steps", values.steps) ?? 1000;
    if (!(Number.isInteger(steps) && steps >= 1)) throw new RangeError(`--steps must be an integer >= 1, got ${steps}`);
    const k = num("k", values.k);
    if (isRewardLoss(o.loss) && !(Number.isInteger(k) && k! >= 2)) {
      throw new RangeError(`--loss ${o.loss} needs --k, the completions per group (an integer >= 2)`);
    }
    if (await files.exists(values.out) && (await files.list(values.out)).length > 0) {
      throw new RangeError(`--out ${values.out} is not empty; choose a new directory`);
    }
    const model = await loadModel(values.model, files);
    const adapter = o.initAdapter ? await readInitAdapter(o.initAdapter, files, model.config) : initLoraAdapter(
      model.config,
      createLoraConfig(model.config, {
        r: o.loraR,
        alpha: o.loraAlpha ?? undefined,
        targetModules: o.target ?? undefined,
        useRslora: o.rslora,
        baseModelNameOrPath: model.dir,
      }),
      new Rng(o.seed),
    );
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
        k: isRewardLoss(o.loss) ? k : undefined,
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
    checkArtifacts(emitted.bytes, values.out);
    await writeArtifacts(values.out, emitted.bytes, adapter.config, files);
    const sizes = Object.fromEntries(
      Object.entries(ARTIFACT_FILES).map((
        [key, name],
      ) => [name, emitted.bytes[key as keyof typeof emitted.bytes].byteLength]),
    );
    if (values.json) {
      console.log(JSON.stringify({ out: values.out, layout, params: emitted.params.length, bytes: sizes }));
    } else {
      console.log(
        `wrote ${
          Object.keys(sizes).join(", ")
        } and adapter_config.json to ${values.out} (${layout} layout, ${emitted.params.length} LoRA matrices)`,
      );
    }
    return 0;
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return isInputError(e) ? 2 : 1;
  }
}
