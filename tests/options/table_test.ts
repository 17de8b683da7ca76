/**
 * The option table: defaults, validation (the library names the option, the CLI the flag), flags
 * parsed from the table, help and README generated from / checked against it, the fingerprint, and
 * the types derived from it (the `@ts-expect-error` lines fail `deno check` if the types loosen).
 */

import assert from "node:assert/strict";
import { flagMessage, helpText, parseFlags, UsageError } from "../../src/cli/flags.ts";
import { parseTrainArgs, TRAIN_FLAGS } from "../../src/cli/train.ts";
import {
  describeError,
  fingerprintValues,
  flagOf,
  number,
  OptionError,
  resolveOptions,
  shown,
} from "../../src/options/table.ts";
import { backendOption } from "../../src/options/common.ts";
import {
  BACKEND_PREFERENCES,
  type BackendPreference,
  resolveBackend,
  RUNTIME_BACKEND_PREFERENCES,
} from "../../src/runtime/backend.ts";
import {
  type ResolvedTrainOptions,
  resolveTrainOptions,
  TRAIN_OPTIONS,
  type TrainOptions,
} from "../../src/train/options.ts";

const BASE = { model: "m", data: "d.jsonl", out: "o" };

/** The error `fn` throws (node's assert.throws does not return it). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new assert.AssertionError({ message: "no error was thrown" });
}

Deno.test("defaults: every option resolves to the documented default", () => {
  const r = resolveTrainOptions(BASE);
  assert.deepEqual(r, {
    ...BASE,
    revision: "main",
    loss: "exo-pref",
    beta: 0.1,
    betaR: 0.1,
    epsilon: 1e-3,
    logitTemperature: 1,
    loraR: 8,
    loraAlpha: null,
    target: null,
    rslora: false,
    initAdapter: null,
    optimizer: "adamw",
    lr: 5e-4,
    weightDecay: 0,
    schedule: "linear",
    warmupSteps: 0,
    batchSize: 8,
    order: "bucketed",
    gradAccum: 1,
    maxGradNorm: 1,
    epochs: 1,
    maxSteps: null,
    seed: 0,
    backend: "auto",
    threads: null,
    checkpointEvery: 0,
    keepCheckpoints: 2,
    resume: false,
  });
  // Hooks that are not options pass through untouched (and are not resolved).
  assert.equal("log" in resolveTrainOptions({ ...BASE, log: () => {} }), false);
});

/** [option, bad value, the reason the library gives after the option's name]. */
const BAD: [keyof typeof TRAIN_OPTIONS, unknown, string][] = [
  ["beta", -1, "must be a positive number, got -1"],
  ["beta", 0, "must be a positive number, got 0"],
  ["betaR", Infinity, "must be a positive number, got Infinity"],
  ["lr", "1e-3", "must be a number, got 1e-3"],
  ["lr", NaN, "must be a number, got NaN"],
  ["epsilon", 1, "must be in (0, 1), got 1"],
  ["epsilon", 0, "must be in (0, 1), got 0"],
  ["logitTemperature", -0.5, "must be a positive number, got -0.5"],
  ["loss", "foo", "must be one of exo-pref, exo-rw, dpo-pref, dpo-rw, got foo"],
  ["optimizer", "adam", "must be one of adamw, sgd, got adam"],
  ["schedule", "step", "must be one of constant, linear, cosine, got step"],
  ["backend", "cuda", `must be one of ${BACKEND_PREFERENCES.join(", ")}, got cuda`],
  ["threads", 0, "must be an integer >= 1, got 0"],
  ["threads", 2.5, "must be an integer >= 1, got 2.5"],
  ["batchSize", 0, "must be an integer >= 1, got 0"],
  ["batchSize", 1.5, "must be an integer >= 1, got 1.5"],
  ["gradAccum", 0, "must be an integer >= 1, got 0"],
  ["warmupSteps", -1, "must be an integer >= 0, got -1"],
  ["maxSteps", 0, "must be an integer >= 1, got 0"],
  ["seed", -3, "must be an integer >= 0, got -3"],
  ["maxGradNorm", -1, "must be >= 0 (0 disables), got -1"],
  ["weightDecay", -0.1, "must be >= 0, got -0.1"],
  ["loraAlpha", 0, "must be a positive number, got 0"],
  ["target", [], "must name at least one entry, got []"],
  ["target", "c_attn", "must be a list of strings, got c_attn"],
  ["rslora", "yes", "must be true or false, got yes"],
  ["model", 3, "must be a model directory or a loaded model, got 3"],
  ["revision", 3, "must be a string, got 3"],
  ["order", "random", "must be one of bucketed, sequential, got random"],
  ["data", 3, "must be a JSONL file path, a list of records, or an (async) iterable of records, got 3"],
  ["out", 3, "must be a string, got 3"],
];

Deno.test("a bad value is refused naming the option in the library and the flag on the CLI", () => {
  for (const [key, v, reason] of BAD) {
    const e = thrown(() => resolveTrainOptions({ ...BASE, [key]: v } as TrainOptions)) as OptionError;
    assert.ok(e instanceof OptionError, `${key} = ${String(v)}: ${e}`);
    assert.equal(e.option, key);
    assert.equal(e.message, `${key} ${reason}`);
    assert.equal(flagMessage(e, TRAIN_OPTIONS), `--${flagOf(TRAIN_OPTIONS, key)} ${reason}`);
    assert.ok(e instanceof RangeError, "option errors are RangeErrors (the CLI's exit code 2)");
  }
  assert.throws(() => resolveTrainOptions({ model: "m" } as TrainOptions), /^OptionError: data is required$/);
  // The library takes records (a list or a stream) for `data` and no `out`; the CLI's table does not.
  const records = [{ prompt: "a", chosen: "b", rejected: "c" }];
  assert.equal(resolveTrainOptions({ model: "m", data: records }).out, null);
  assert.equal(resolveTrainOptions({ model: "m", data: records }).data, records);
  async function* stream() {
    yield* records;
  }
  assert.equal(resolveTrainOptions({ model: "m", data: stream() }).out, null);
  assert.equal(TRAIN_FLAGS.out.presence, "required");
  assert.equal(TRAIN_FLAGS.data.presence, "required");
});

Deno.test("flags come from the table: kebab-case names, typed values, negative numbers, lists", () => {
  assert.equal(flagOf(TRAIN_OPTIONS, "betaR"), "beta-r");
  assert.equal(flagOf(TRAIN_OPTIONS, "logitTemperature"), "logit-temperature");
  assert.equal(flagOf(TRAIN_OPTIONS, "maxGradNorm"), "max-grad-norm");
  const a = parseTrainArgs([
    ...["--model", "m", "--data", "d", "--out", "o", "--beta-r", "0.5", "--lr", "-1", "--grad-accum", "3"],
    ...["--target", "c_attn, c_fc", "--rslora", "--loss", "dpo-rw", "--json"],
  ]);
  assert.deepEqual(a, {
    ...BASE,
    data: "d",
    betaR: 0.5,
    lr: -1,
    gradAccum: 3,
    target: ["c_attn", "c_fc"],
    rslora: true,
    loss: "dpo-rw",
    json: true,
    help: false,
  });
  // The negative lr parsed as a number, so the table refuses it by name.
  assert.throws(() => resolveTrainOptions(a), /^OptionError: lr must be a positive number, got -1$/);
  const bad = (argv: string[]) =>
    flagMessage(thrown(() => parseTrainArgs(["--model", "m", "--data", "d", "--out", "o", ...argv])), TRAIN_OPTIONS);
  assert.equal(bad(["--lr", "fast"]), `--lr must be a number, got "fast"`);
  assert.equal(bad(["--batch-size", "two"]), `--batch-size must be an integer >= 1, got "two"`);
  assert.equal(bad(["--epochs", ""]), `--epochs must be an integer >= 1, got ""`);
  assert.match(bad(["--learning-rate", "1"]), /^Unknown option '--learning-rate'/);
  const missing = thrown(() => parseTrainArgs(["--model", "m"]));
  assert.ok(missing instanceof UsageError);
  assert.equal(flagMessage(missing, TRAIN_OPTIONS), "--data is required");
  const noOut = thrown(() => parseTrainArgs(["--model", "m", "--data", "d"]));
  assert.ok(noOut instanceof UsageError, "--out stays required on the command line");
  assert.equal(flagMessage(noOut, TRAIN_OPTIONS), "--out is required");
  assert.equal(parseTrainArgs(["--help"]).help, true, "--help needs no other flag");
});

Deno.test("help lists every option of the table with its flag and default", () => {
  const help = helpText("Usage: x", TRAIN_OPTIONS);
  const lines = help.split("\n");
  assert.equal(lines[0], "Usage: x");
  for (const [key, s] of Object.entries(TRAIN_OPTIONS)) {
    const flag = `--${flagOf(TRAIN_OPTIONS, key)}`;
    const i = lines.findIndex((l) => l.trimStart().startsWith(`${flag} `) || l.trim() === flag);
    assert.ok(i > 0, `${flag} is not in the help`);
    const text = lines[i] +
      (lines[i + 1]?.startsWith("   ") && !lines[i + 1].trimStart().startsWith("--") ? lines[i + 1] : "");
    assert.ok(text.includes(s.help), `${flag}: help text`);
    if (s.presence === "default" && s.kind !== "boolean") {
      const def = s.defaultText ?? shown(s.default);
      assert.ok(text.includes(`(default ${def})`), `${flag}: ${text}`);
    }
  }
  assert.match(help, /--loss exo-pref\|exo-rw\|dpo-pref\|dpo-rw\s+preference loss \(default exo-pref\)/);
  assert.match(help, /--lr F +peak learning rate \(default 5e-4\)/);
  assert.match(help, new RegExp(`--backend ${BACKEND_PREFERENCES.join("\\|")}\\s`));
});

Deno.test("README documents every train flag with its default", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const section = readme.slice(readme.indexOf("`train` options"), readme.indexOf("Outputs in `--out`"));
  assert.ok(section.length > 100, "the README's `train` options paragraph is missing");
  for (const [key, s] of Object.entries(TRAIN_FLAGS)) {
    if (s.presence === "required" || key === "json" || key === "help") continue; // in the command line above
    const flag = `--${flagOf(TRAIN_FLAGS, key)}`;
    assert.ok(section.includes(`\`${flag}`), `README does not document ${flag}`);
    if (s.presence === "default" && s.kind !== "boolean" && s.defaultText === undefined) {
      const at = section.indexOf(`\`${flag}`);
      const next = section.indexOf("`--", at + 2);
      const entry = section.slice(at, next === -1 ? undefined : next);
      const said = entry.match(/\[([^\]]+)\]/)?.[1];
      const same = said !== undefined && (said === String(s.default) || Number(said) === s.default);
      assert.ok(same, `README: ${flag} should say its default [${s.default}]: ${entry}`);
    }
  }
});

Deno.test("the fingerprint holds exactly the options that change a run's result", () => {
  const r = resolveTrainOptions(BASE);
  const keys = fingerprintValues(TRAIN_OPTIONS, r).map(([k]) => k);
  // What may change on resume: where it runs (and on how many threads), how often it checkpoints and how many it
  // keeps, and the resume flag itself; model, data and out enter the fingerprint as the model's identity, the data's
  // hash and the directory, and the Hub revision through the model's identity (its snapshot, named by commit).
  const free = [
    "model",
    "revision",
    "data",
    "out",
    "backend",
    "threads",
    "checkpointEvery",
    "keepCheckpoints",
    "resume",
  ];
  assert.deepEqual(keys, Object.keys(TRAIN_OPTIONS).filter((k) => !free.includes(k)));
  const changed = fingerprintValues(TRAIN_OPTIONS, resolveTrainOptions({ ...BASE, gradAccum: 2 }));
  assert.notDeepEqual(changed, fingerprintValues(TRAIN_OPTIONS, r));
});

Deno.test("backend is checked against the runtime's list of backend names", async () => {
  assert.deepEqual(TRAIN_OPTIONS.backend.choices!(), BACKEND_PREFERENCES);
  for (const b of BACKEND_PREFERENCES) assert.equal(resolveTrainOptions({ ...BASE, backend: b }).backend, b);
  // ort-training is the trainer's own engine: train takes it, the inference commands' tables do not,
  // and resolveBackend (through which auto picks) refuses it.
  assert.ok(BACKEND_PREFERENCES.includes("ort-training"));
  assert.deepEqual(RUNTIME_BACKEND_PREFERENCES, BACKEND_PREFERENCES.filter((b) => b !== "ort-training"));
  assert.equal(backendOption().check("ort-training"), `must be one of ${RUNTIME_BACKEND_PREFERENCES.join(", ")}`);
  await assert.rejects(
    () => resolveBackend("ort-training" as BackendPreference),
    /^RangeError: ort-training is a training engine \(train --backend ort-training\); here use auto, webgpu, wasm, native-cpu, native-webgpu$/,
  );
  assert.notEqual((await resolveBackend("auto")).backend, "ort-training");
});

Deno.test("--revision: one entry of the table, given to train and the commands that load a model by Hub id", () => {
  const a = parseTrainArgs(["--model", "org/name", "--data", "d", "--out", "o", "--revision", "v2"]);
  assert.equal(resolveTrainOptions(a).revision, "v2");
  assert.equal(flagOf(TRAIN_OPTIONS, "revision"), "revision");
  assert.equal(TRAIN_OPTIONS.revision.fingerprint, false);
});

Deno.test("a small table of its own: required, unset and defaulted options; custom namers", () => {
  const T = {
    rate: number({ required: true, check: "positive", help: "a rate" }),
    scale: number({ default: null, check: { min: 1, max: 4, maxExclusive: true }, help: "a scale" }),
    bias: number({ default: 0.5, help: "a bias" }),
  };
  assert.deepEqual(resolveOptions(T, { rate: 2 }), { rate: 2, scale: null, bias: 0.5 });
  assert.throws(() => resolveOptions(T, { rate: 1, scale: 4 }), /^OptionError: scale must be >= 1 and < 4, got 4$/);
  const e = new OptionError("rate", (n) => `${n("rate")} needs ${n("scale")}`);
  assert.equal(e.message, "rate needs scale");
  assert.equal(describeError(e, (k) => `<${k}>`), "<rate> needs <scale>");
  assert.equal(describeError(new Error("plain"), (k) => `<${k}>`), "plain");
  assert.deepEqual(parseFlags(T, ["--rate", "3", "--scale=2"]), { rate: 3, scale: 2 });
});

// Compile-time checks: TrainOptions and ResolvedTrainOptions are derived from the table.
function _types(r: ResolvedTrainOptions): void {
  // @ts-expect-error data is required
  const _a: TrainOptions = { model: "m" };
  // @ts-expect-error beta is a number
  const _b: TrainOptions = { ...BASE, beta: "0.1" };
  // @ts-expect-error not a loss
  const _c: TrainOptions = { ...BASE, loss: "ipo" };
  // @ts-expect-error loraAlpha has no default: it may be null
  const _d: number = r.loraAlpha;
  // @ts-expect-error out is optional in the library: it may be null
  const _g: string = r.out;
  // @ts-expect-error data is a path or records
  const _h: number = r.data;
  const _e: number = r.beta;
  const _f: "adamw" | "sgd" = r.optimizer;
}
