/**
 * `export-trl`: the same run as a TRL training script, for when one device is not enough. A pure
 * function of the resolved training options, so it follows the trainer's option table: the
 * mapping below is the only place that knows TRL's names.
 *
 * | exo-tune | TRL 1.13 (`DPOConfig` / `LoraConfig`) |
 * |---|---|
 * | `--loss exo-pref`, `--epsilon ε` | `loss_type=["exo_pair"]`, `label_smoothing=ε` |
 * | `--loss dpo-pref` | `loss_type=["sigmoid"]`, `label_smoothing=0` |
 * | `--beta` | `beta` |
 * | `--lr`, `--schedule`, `--warmup-steps` | `learning_rate`, `lr_scheduler_type` (`constant_with_warmup` / `linear` / `cosine`), `warmup_steps` |
 * | `--optimizer adamw\|sgd`, `--weight-decay` | `optim="adamw_torch"` (betas 0.9/0.999, eps 1e-8) or `"sgd"`, `weight_decay` |
 * | `--batch-size`, `--grad-accum` | `per_device_train_batch_size`, `gradient_accumulation_steps` |
 * | `--max-grad-norm` (0 = off) | `max_grad_norm` (0 = off) |
 * | `--epochs`, `--max-steps` | `num_train_epochs`, `max_steps` (-1 = epochs) |
 * | `--seed` | `seed` |
 * | `--lora-r`, `--lora-alpha`, `--target`, `--rslora` | `r`, `lora_alpha`, `target_modules`, `use_rslora` |
 * | `--init-adapter DIR` | the adapter's own LoRA config, its weights loaded into the new adapter |
 * | model context | `max_length` |
 * | float32 training, dropout off | `bf16=False`, `fp16=False`, `disable_dropout=True` |
 *
 * `exo-rw` and `dpo-rw` have no TRL counterpart (TRL's trainers take pairs, not groups of K
 * completions with rewards), nor does `--logit-temperature` other than 1: those refuse with a
 * message.
 *
 * @module
 */

import type { DataKind } from "../data/formats.ts";
import type { LoraConfig } from "../lora/config.ts";
import type { ModelConfig } from "../models/config.ts";
import { OptionError } from "../options/table.ts";
import type { ResolvedTrainOptions } from "../train/options.ts";
import { TRL_SCRIPT, TRL_VERSION } from "./trl_script.ts";

export { TRL_VERSION };

/** What the export needs besides the options: resolved model, LoRA config and data format. */
export interface TrlExportContext {
  /** A local directory (absolute), or a Hub repo pinned to the commit the run used. */
  model: { kind: "dir"; path: string } | { kind: "hub"; repo: string; revision: string };
  modelConfig: ModelConfig;
  /** The LoRA config the run trains (the init adapter's, when there is one). */
  lora: LoraConfig;
  /** The data file (absolute path) and its format. */
  data: { path: string; kind: DataKind; tokenized: boolean; conversational: boolean };
  /** The init adapter directory (absolute), or null. */
  initAdapter: string | null;
  /** The command line, recorded in the script. */
  command?: string;
}

/** The files to write (`train_trl.py`, `trl_config.json`) and notes for the user. */
export interface TrlExport {
  files: Record<string, string>;
  notes: string[];
}

const SCHEDULES: Record<ResolvedTrainOptions["schedule"], string> = {
  constant: "constant_with_warmup",
  linear: "linear",
  cosine: "cosine",
};

/** The `DPOConfig` keyword arguments of a run (all names checked against TRL 1.13's source). */
export function dpoConfigOf(o: ResolvedTrainOptions, ctx: TrlExportContext): Record<string, unknown> {
  return {
    loss_type: [o.loss === "exo-pref" ? "exo_pair" : "sigmoid"],
    beta: o.beta,
    label_smoothing: o.loss === "exo-pref" ? o.epsilon : 0,
    learning_rate: o.lr,
    lr_scheduler_type: SCHEDULES[o.schedule],
    warmup_steps: o.warmupSteps,
    optim: o.optimizer === "adamw" ? "adamw_torch" : "sgd",
    adam_beta1: 0.9,
    adam_beta2: 0.999,
    adam_epsilon: 1e-8,
    weight_decay: o.weightDecay,
    per_device_train_batch_size: o.batchSize,
    gradient_accumulation_steps: o.gradAccum,
    max_grad_norm: o.maxGradNorm,
    num_train_epochs: o.epochs,
    max_steps: o.maxSteps ?? -1,
    seed: o.seed,
    max_length: ctx.modelConfig.maxPositions,
    disable_dropout: true,
    bf16: false,
    fp16: false,
    logging_steps: 1,
    logging_first_step: true,
    save_strategy: "no",
    report_to: "none",
  };
}

/** The `peft.LoraConfig` keyword arguments. */
export function loraConfigOf(c: LoraConfig): Record<string, unknown> {
  return {
    r: c.r,
    lora_alpha: c.alpha,
    target_modules: [...c.targetModules],
    use_rslora: c.useRslora,
    lora_dropout: c.dropout,
    bias: "none",
    task_type: "CAUSAL_LM",
    // GPT-2's Conv1D stores [in, out]; PEFT needs to know (it also infers it, with a warning).
    ...(c.fanInFanOut ? { fan_in_fan_out: true } : {}),
  };
}

/**
 * The TRL script and config for a run. Throws an {@link OptionError} (a RangeError) naming the
 * option for what TRL cannot do (reward-group losses, a logit temperature, data that is not pairs).
 */
export function exportTrl(o: ResolvedTrainOptions, ctx: TrlExportContext): TrlExport {
  if (o.loss === "exo-rw" || o.loss === "dpo-rw") {
    throw new OptionError(
      "loss",
      (n) =>
        `${
          n("loss")
        } ${o.loss} has no TRL counterpart: TRL's DPOTrainer trains on preference pairs, not on groups of K completions with rewards. Train ${o.loss} here, or export an exo-pref / dpo-pref run on pairs`,
    );
  }
  if (o.logitTemperature !== 1) {
    throw new OptionError(
      "logitTemperature",
      (n) =>
        `${
          n("logitTemperature")
        } ${o.logitTemperature} has no TRL counterpart (DPOTrainer scores with the plain logits); export with ${
          n("logitTemperature")
        } 1`,
    );
  }
  if (ctx.data.kind !== "pairs") {
    throw new OptionError(
      "loss",
      (n) => `${ctx.data.path}: ${n("loss")} ${o.loss} needs preference pairs, but the file holds ${ctx.data.kind}`,
    );
  }
  const model = ctx.model.kind === "dir"
    ? { name_or_path: ctx.model.path, revision: null }
    : { name_or_path: ctx.model.repo, revision: ctx.model.revision };
  const config = {
    exo_tune: {
      exported_by: "exo-tune export-trl",
      command: ctx.command ?? null,
      loss: o.loss,
      trl_version: TRL_VERSION,
    },
    model: { ...model, dtype: "float32" },
    data: {
      path: ctx.data.path,
      conversational: ctx.data.conversational,
      pretokenized: ctx.data.tokenized,
    },
    init_adapter: ctx.initAdapter,
    lora: loraConfigOf(ctx.lora),
    dpo: dpoConfigOf(o, ctx),
  };
  const notes = [
    `TRL ${TRL_VERSION}: DPOTrainer with loss_type=${JSON.stringify(config.dpo.loss_type)}${
      o.loss === "exo-pref" ? `, label_smoothing=${o.epsilon}` : ""
    }, beta=${o.beta}; LoRA r=${ctx.lora.r}, alpha=${ctx.lora.alpha} on ${ctx.lora.targetModules.join(", ")}`,
    "per_device_train_batch_size is per GPU: with N processes the batch per update is N times larger; divide --batch-size by N before exporting to keep it",
    "the reference is the base model with the adapter disabled, as here; batches are drawn by TRL's sampler (not length buckets), so the run matches in distribution, not step by step",
  ];
  if (!ctx.data.conversational && !ctx.data.tokenized) {
    notes.push(
      "text data: TRL tokenizes prompt + completion together and appends the EOS text, where exo-tune tokenizes them apart; ids can differ at the boundary",
    );
  }
  if (ctx.data.tokenized) {
    notes.push("pre-tokenized data: the script passes the *_ids columns to DPOTrainer as they are (no EOS added)");
  }
  return {
    files: {
      "train_trl.py": TRL_SCRIPT,
      "trl_config.json": JSON.stringify(config, null, 2) + "\n",
    },
    notes,
  };
}
