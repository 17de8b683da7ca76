/**
 * `export-trl`: the TRL script and config for a run. No TRL here to run it, so the checks are
 * structural: every option lands in the TRL argument of that name (names checked against TRL
 * 1.13.0's `DPOConfig` and transformers 5.18's `TrainingArguments`), the losses without a TRL
 * counterpart refuse, and the script compiles (`python3 -m py_compile`) and parses its options.
 */

import assert from "node:assert/strict";
import { run as exportTrlCli } from "../../src/cli/export_trl.ts";
import { exportTrl, TRL_VERSION } from "../../src/export/trl.ts";
import { parseModelConfig } from "../../src/models/config.ts";
import { createLoraConfig } from "../../src/lora/config.ts";
import { resolveTrainOptions } from "../../src/train/trainer.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const FIXTURES = `${ROOT}tests/fixtures/`;
const GPT2 = `${FIXTURES}tiny-gpt2`;

/** Fields of TRL 1.13.0's DPOConfig and transformers 5.18.0's TrainingArguments that the export uses. */
const TRL_FIELDS = new Set([
  // trl/trainer/dpo_config.py
  "loss_type",
  "beta",
  "label_smoothing",
  "max_length",
  "disable_dropout",
  "learning_rate",
  // transformers/training_args.py
  "lr_scheduler_type",
  "warmup_steps",
  "optim",
  "adam_beta1",
  "adam_beta2",
  "adam_epsilon",
  "weight_decay",
  "per_device_train_batch_size",
  "gradient_accumulation_steps",
  "max_grad_norm",
  "num_train_epochs",
  "max_steps",
  "seed",
  "bf16",
  "fp16",
  "logging_steps",
  "logging_first_step",
  "save_strategy",
  "report_to",
]);
const LORA_FIELDS = new Set([
  "r",
  "lora_alpha",
  "target_modules",
  "use_rslora",
  "lora_dropout",
  "bias",
  "task_type",
  "fan_in_fan_out",
]);

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [], err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => err.push(a.join(" "));
  try {
    return { code: await fn(), out, err };
  } finally {
    console.log = log;
    console.error = error;
  }
}

// deno-lint-ignore no-explicit-any
async function readConfig(dir: string): Promise<any> {
  return JSON.parse(await Deno.readTextFile(`${dir}/trl_config.json`));
}

Deno.test("export-trl: every option maps to its TRL argument (exo-pref -> exo_pair, label_smoothing = epsilon)", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await capture(() =>
      exportTrlCli([
        "--model",
        GPT2,
        "--data",
        `${ROOT}data/pairs.jsonl`,
        "--out",
        out,
        "--loss",
        "exo-pref",
        "--beta",
        "0.2",
        "--epsilon",
        "0.01",
        "--lora-r",
        "4",
        "--lora-alpha",
        "12",
        "--target",
        "c_attn",
        "--rslora",
        "--lr",
        "3e-4",
        "--schedule",
        "cosine",
        "--warmup-steps",
        "5",
        "--batch-size",
        "16",
        "--grad-accum",
        "2",
        "--max-grad-norm",
        "0.5",
        "--epochs",
        "3",
        "--max-steps",
        "40",
        "--seed",
        "9",
        "--weight-decay",
        "0.01",
      ])
    );
    assert.equal(r.code, 0, r.err.join("\n"));
    assert.match(r.out[0], /^accelerate launch .*train_trl\.py --output-dir runs\/trl$/);
    const c = await readConfig(out);
    assert.deepEqual(c.dpo, {
      loss_type: ["exo_pair"],
      beta: 0.2,
      label_smoothing: 0.01,
      learning_rate: 3e-4,
      lr_scheduler_type: "cosine",
      warmup_steps: 5,
      optim: "adamw_torch",
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      weight_decay: 0.01,
      per_device_train_batch_size: 16,
      gradient_accumulation_steps: 2,
      max_grad_norm: 0.5,
      num_train_epochs: 3,
      max_steps: 40,
      seed: 9,
      max_length: 64, // tiny-gpt2's n_positions
      disable_dropout: true,
      bf16: false,
      fp16: false,
      logging_steps: 1,
      logging_first_step: true,
      save_strategy: "no",
      report_to: "none",
    });
    for (const k of Object.keys(c.dpo)) assert.ok(TRL_FIELDS.has(k), `${k} is not a DPOConfig argument`);
    assert.deepEqual(c.lora, {
      r: 4,
      lora_alpha: 12,
      target_modules: ["c_attn"],
      use_rslora: true,
      lora_dropout: 0,
      bias: "none",
      task_type: "CAUSAL_LM",
      fan_in_fan_out: true,
    });
    for (const k of Object.keys(c.lora)) assert.ok(LORA_FIELDS.has(k), k);
    assert.deepEqual(c.model, { name_or_path: GPT2, revision: null, dtype: "float32" });
    assert.deepEqual(c.data, { path: `${ROOT}data/pairs.jsonl`, conversational: false, pretokenized: false });
    assert.equal(c.init_adapter, null);
    assert.equal(c.exo_tune.trl_version, TRL_VERSION);
    assert.ok(r.err.some((l) => /text data: TRL tokenizes prompt \+ completion together/.test(l)));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("export-trl: dpo-pref is sigmoid; defaults map as train's; --init-adapter brings its LoRA config", async () => {
  const o = resolveTrainOptions({ model: GPT2, data: "x.jsonl", out: "o", loss: "dpo-pref" });
  const modelConfig = parseModelConfig(JSON.parse(await Deno.readTextFile(`${GPT2}/config.json`)), "config.json");
  const ctx = {
    model: { kind: "hub" as const, repo: "org/name", revision: "a".repeat(40) },
    modelConfig,
    lora: createLoraConfig(modelConfig, { r: 8 }),
    data: { path: "/d/pairs.jsonl", kind: "pairs" as const, tokenized: true, conversational: false },
    initAdapter: null,
  };
  const e = exportTrl(o, ctx);
  const c = JSON.parse(e.files["trl_config.json"]);
  assert.deepEqual(c.dpo.loss_type, ["sigmoid"]);
  assert.equal(c.dpo.label_smoothing, 0);
  assert.deepEqual(
    [c.dpo.beta, c.dpo.learning_rate, c.dpo.lr_scheduler_type, c.dpo.per_device_train_batch_size, c.dpo.max_steps],
    [0.1, 5e-4, "linear", 8, -1],
  );
  assert.deepEqual([c.lora.r, c.lora.lora_alpha], [8, 16]);
  assert.deepEqual(c.model, { name_or_path: "org/name", revision: "a".repeat(40), dtype: "float32" });
  assert.equal(c.data.pretokenized, true);
  assert.equal(
    exportTrl({ ...o, schedule: "constant" }, ctx).files["trl_config.json"].includes('"constant_with_warmup"'),
    true,
  );
  assert.match(JSON.parse(exportTrl({ ...o, optimizer: "sgd" }, ctx).files["trl_config.json"]).dpo.optim, /^sgd$/);

  const out = await Deno.makeTempDir();
  try {
    const r = await capture(() =>
      exportTrlCli([
        "--model",
        GPT2,
        "--data",
        `${FIXTURES}pairs.jsonl`,
        "--out",
        out,
        "--init-adapter",
        `${GPT2}/adapter`,
        "--lora-r",
        "16",
      ])
    );
    assert.equal(r.code, 0, r.err.join("\n"));
    const ci = await readConfig(out);
    assert.equal(ci.init_adapter, `${GPT2}/adapter`);
    // The adapter's own config wins over --lora-r, as in train.
    const adapterConfig = JSON.parse(await Deno.readTextFile(`${GPT2}/adapter/adapter_config.json`));
    assert.deepEqual([ci.lora.r, ci.lora.lora_alpha], [adapterConfig.r, adapterConfig.lora_alpha]);
    assert.deepEqual([...ci.lora.target_modules].sort(), [...adapterConfig.target_modules].sort());
    assert.equal(ci.data.pretokenized, true);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("export-trl: exo-rw, dpo-rw and a logit temperature have no TRL counterpart (exit 2, nothing written)", async () => {
  const out = await Deno.makeTempDir();
  try {
    for (const loss of ["exo-rw", "dpo-rw"]) {
      const r = await capture(() =>
        exportTrlCli(["--model", GPT2, "--data", `${FIXTURES}rewards.jsonl`, "--out", `${out}/x`, "--loss", loss])
      );
      assert.equal(r.code, 2);
      assert.match(r.err[0], new RegExp(`--loss ${loss} has no TRL counterpart`));
    }
    let r = await capture(() =>
      exportTrlCli([
        "--model",
        GPT2,
        "--data",
        `${FIXTURES}pairs.jsonl`,
        "--out",
        `${out}/x`,
        "--logit-temperature",
        "0.8",
      ])
    );
    assert.equal(r.code, 2);
    assert.match(r.err[0], /--logit-temperature 0\.8 has no TRL counterpart/);
    r = await capture(() => exportTrlCli(["--model", GPT2, "--data", `${FIXTURES}rewards.jsonl`, "--out", `${out}/x`]));
    assert.equal(r.code, 2);
    assert.match(r.err[0], /needs preference pairs, but the file holds groups/);
    assert.deepEqual([...Deno.readDirSync(out)], []);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("export-trl: the script compiles and takes --output-dir and --max-steps (python3, no TRL needed)", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await capture(() => exportTrlCli(["--model", GPT2, "--data", `${FIXTURES}pairs.jsonl`, "--out", out]));
    assert.equal(r.code, 0, r.err.join("\n"));
    const script = await Deno.readTextFile(`${out}/train_trl.py`);
    assert.ok(script.includes(`# dependencies = [\n#   "trl==1.13.0",`));
    for (
      const needle of [
        "DPOConfig(**dpo)",
        'peft_config=LoraConfig(**cfg["lora"])',
        "trainer.save_model(args.output_dir)",
      ]
    ) {
      assert.ok(script.includes(needle), needle);
    }
    const compile = await new Deno.Command("python3", { args: ["-m", "py_compile", `${out}/train_trl.py`] }).output();
    assert.equal(compile.code, 0, new TextDecoder().decode(compile.stderr));
    // Imports of torch/TRL are inside main(): --help works without them.
    const help = await new Deno.Command("python3", { args: [`${out}/train_trl.py`, "--help"] }).output();
    const text = new TextDecoder().decode(help.stdout);
    assert.equal(help.code, 0, new TextDecoder().decode(help.stderr));
    for (const flag of ["--output-dir", "--max-steps", "--config"]) assert.ok(text.includes(flag), flag);
    const noOut = await new Deno.Command("python3", { args: [`${out}/train_trl.py`] }).output();
    assert.equal(noOut.code, 2); // argparse: --output-dir is required
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
