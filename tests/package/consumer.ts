/**
 * The consumer test (`deno task test:package`, a CI step of its own after `deno task test`): the
 * package as a new user gets it. It packs the repository (`npm pack`, whose `prepack` runs
 * `deno task build`), checks what the tarball holds, installs it into an empty temporary project
 * with npm, and there:
 *
 * - Node, Bun and Deno (through `npm:exo-tune`) each run `app.mjs`: import the package, load a
 *   fixture model, run one training step (the fixture's PyTorch-golden SGD step) and generate;
 * - tsc (nodenext) and `deno check` type-check `app.mjs` against the package's `.d.ts` files;
 * - the CLI runs from the installed package: `npx exo-tune doctor`, `bunx exo-tune doctor`,
 *   `deno run -A npm:exo-tune doctor`, and `npx exo-tune demo` (a 1-step demo that must find the
 *   bundled model and data inside node_modules);
 * - all of the above without onnxruntime-node, an optional peer dependency that npm does not
 *   install (doctor must say it is absent); then it is installed beside exo-tune and the golden
 *   step runs on `native-cpu` from Node and Deno.
 *
 * Any runtime that cannot do its part fails the test. Prints one line per check and ends with
 * "package: N passed, M failed"; exits 1 when anything failed.
 *
 * @module
 */

import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const BIN = `${ROOT}/node_modules/.bin`;
const FX = `${ROOT}/tests/fixtures`;

/** What may ship: the compiled modules, the demo's model and data, and npm's own files. */
const ALLOWED = [
  /^dist\/esm\/.+\.(js|d\.ts)$/,
  /^models\/review-gpt2\/[^/]+$/,
  /^data\/(README\.md|pairs\.jsonl|pairs-test\.jsonl|prompts-test\.jsonl|rewards\.jsonl)$/,
  /^(package\.json|README\.md|LICENSE)$/,
];
const REQUIRED = [
  "dist/esm/mod.js",
  "dist/esm/mod.d.ts",
  "dist/esm/src/cli/bin.js",
  "models/review-gpt2/model.safetensors",
];

// The golden step's expectations (tests/train/trainer_golden_test.ts holds the same tolerances):
// the loss to 1e-5 relative (measured ~1e-7, float32 against PyTorch float64), the adapter to 1e-3
// of the update's size (measured ~1e-6).
const LOSS_TOL = 1e-5;
const UPDATE_TOL = 1e-3;

let passed = 0, failed = 0;
let lap = performance.now();
/** Records one check; the seconds since the previous one are shown for information only. */
function check(ok: boolean, what: string, detail = ""): void {
  if (ok) passed++;
  else failed++;
  const s = ((performance.now() - lap) / 1000).toFixed(1);
  lap = performance.now();
  console.log(`${ok ? "ok    " : "FAILED"} ${what}${detail ? `: ${detail}` : ""} (${s} s)`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}
async function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  const r = await new Deno.Command(cmd, { args, cwd, env, stdout: "piped", stderr: "piped" }).output();
  return { code: r.code, stdout: new TextDecoder().decode(r.stdout), stderr: new TextDecoder().decode(r.stderr) };
}
/** The last line of stdout as JSON (null when it is not). */
function lastJson(r: Run): Record<string, unknown> | null {
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line);
  } catch {
    return null;
  }
}
const tail = (r: Run) => `exit ${r.code}\n${(r.stderr + r.stdout).trim().split("\n").slice(-15).join("\n")}`;

const work = await mkdtemp(join(tmpdir(), "exo-tune-consumer-"));
try {
  // 1. Pack (prepack builds dist/esm and the bundle first).
  const packed = await sh("npm", ["pack", "--json", "--pack-destination", work], ROOT);
  if (packed.code !== 0) throw new Error(`npm pack failed\n${tail(packed)}`);
  const tgz = (await readdir(work)).find((f) => f.endsWith(".tgz"));
  if (!tgz) throw new Error(`npm pack wrote no tarball into ${work}`);
  // npm prints prepack's output before its JSON report: the report is the trailing JSON array.
  const report = JSON.parse(packed.stdout.slice(packed.stdout.lastIndexOf("\n[") + 1))[0] as {
    size: number;
    unpackedSize: number;
    files: { path: string; size: number }[];
  };
  const paths = report.files.map((f) => f.path);
  const stray = paths.filter((p) => !ALLOWED.some((re) => re.test(p)));
  check(stray.length === 0, "the tarball holds only the compiled modules, the demo's model and data", stray.join(", "));
  const missing = REQUIRED.filter((p) => !paths.includes(p));
  check(missing.length === 0, "the tarball has mod.js, mod.d.ts, the CLI and the review model", missing.join(", "));
  console.log(
    `       ${tgz}: ${(report.size / 1e6).toFixed(1)} MB packed, ${
      (report.unpackedSize / 1e6).toFixed(1)
    } MB unpacked, ${paths.length} files`,
  );

  // 2. An empty project that depends on the tarball only.
  const app = join(work, "app");
  await mkdir(app);
  await writeFile(
    join(app, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module", dependencies: { "exo-tune": `file:../${tgz}` } }),
  );
  // --prefer-offline: the dependencies are the repository's own, already in npm's cache after `npm ci`.
  const inst = await sh("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline"], app);
  if (inst.code !== 0) throw new Error(`npm install of the tarball failed\n${tail(inst)}`);
  console.log(`       installed into an empty project (${((performance.now() - lap) / 1000).toFixed(1)} s)`);
  lap = performance.now();
  await cp(join(ROOT, "tests/package/app.mjs"), join(app, "app.mjs"));
  const src = await readFile(join(app, "app.mjs"), "utf8");
  await writeFile(join(app, "app_deno.mjs"), src.replace(`from "exo-tune"`, `from "npm:exo-tune"`));
  const fixtures = join(app, "fixtures");
  await mkdir(fixtures);
  await cp(join(FX, "tiny-gpt2"), join(fixtures, "tiny-gpt2"), { recursive: true });
  await cp(join(FX, "pairs.jsonl"), join(fixtures, "pairs.jsonl"));
  const golden = JSON.parse(await readFile(join(fixtures, "tiny-gpt2/golden.json"), "utf8"));
  const goldenLoss: number = golden.losses.float64.exo_pref.loss;
  // PyTorch's next token after the first logits row: the argmax of its last position.
  const lastLogits: number[] = golden.logits.values[0].at(-1);
  const goldenNext = lastLogits.indexOf(Math.max(...lastLogits));

  // 3. Import, train one step and generate, in each runtime.
  const runtimes: [string, string, string[]][] = [
    ["node", "node", ["app.mjs"]],
    ["bun", `${BIN}/bun`, ["app.mjs"]],
    ["deno", `${BIN}/deno`, ["run", "-A", "app_deno.mjs"]],
  ];
  const greedy: Record<string, string> = {};
  for (const [name, cmd, args] of runtimes) {
    const out = join(work, `run-${name}`);
    const r = await sh(cmd, [...args, fixtures, out], app);
    const res = lastJson(r) as {
      runtime: string;
      steps: number;
      loss: number;
      updateError: number;
      base: { ids: number[] };
      tuned: { ids: number[] };
    } | null;
    if (r.code !== 0 || !res) {
      check(false, `${name}: import exo-tune, train one step, generate`, tail(r));
      continue;
    }
    check(
      res.runtime === name && res.steps === 1,
      `${name}: import exo-tune and train one step`,
      `${res.runtime}, ${res.steps} step(s)`,
    );
    const lossErr = Math.abs(res.loss - goldenLoss) / Math.abs(goldenLoss);
    check(
      lossErr <= LOSS_TOL && res.updateError <= UPDATE_TOL,
      `${name}: the step matches PyTorch's golden step`,
      `loss ${res.loss} (golden ${goldenLoss.toFixed(7)}, rel. error ${lossErr.toExponential(1)}), adapter error ${
        res.updateError.toExponential(1)
      } of the update`,
    );
    check(
      res.base.ids.length === 8 && res.tuned.ids.length === 8 && res.base.ids[0] === goldenNext,
      `${name}: generate (greedy, 8 tokens; the first is PyTorch's argmax ${goldenNext})`,
      `base ${res.base.ids.join(" ")}; tuned ${res.tuned.ids.join(" ")}`,
    );
    greedy[name] = JSON.stringify([res.base.ids, res.tuned.ids]);
  }
  const distinct = new Set(Object.values(greedy));
  check(
    Object.keys(greedy).length === 3 && distinct.size === 1,
    "node, bun and deno generate the same tokens",
    distinct.size > 1 ? JSON.stringify(greedy) : "",
  );

  // 4. Types: the package's .d.ts as a TypeScript user (tsc, nodenext) and a Deno user see them.
  const tsc = await sh(`${BIN}/tsc`, [
    "--noEmit",
    "--allowJs",
    "--checkJs",
    "--strict",
    "--module",
    "nodenext",
    "--target",
    "es2022",
    "--types",
    "node",
    "app.mjs",
  ], app);
  check(tsc.code === 0, "tsc (nodenext) type-checks app.mjs against the package's .d.ts", tsc.code ? tail(tsc) : "");
  const dcheck = await sh(`${BIN}/deno`, ["check", "app_deno.mjs"], app);
  check(dcheck.code === 0, "deno check type-checks app.mjs through npm:exo-tune", dcheck.code ? tail(dcheck) : "");

  // 5. The CLI from the installed package.
  const clis: [string, string, string[], string][] = [
    ["npx exo-tune doctor", "npx", ["--no-install", "exo-tune", "doctor", "--json"], "node"],
    ["bunx exo-tune doctor", `${BIN}/bunx`, ["exo-tune", "doctor", "--json"], "node"],
    ["bunx --bun exo-tune doctor", `${BIN}/bunx`, ["--bun", "exo-tune", "doctor", "--json"], "bun"],
    ["deno run -A npm:exo-tune doctor", `${BIN}/deno`, ["run", "-A", "npm:exo-tune", "doctor", "--json"], "deno"],
  ];
  for (const [what, cmd, args, runtime] of clis) {
    const r = await sh(cmd, args, app);
    const rep = lastJson(r) as { runtime?: { name: string }; wasm?: { ok: boolean }; backend?: string } | null;
    check(
      r.code === 0 && rep?.runtime?.name === runtime && rep?.wasm?.ok === true,
      `${what} (runs on ${runtime}, wasm works)`,
      r.code === 0 ? `${rep?.runtime?.name}, backend ${rep?.backend}` : tail(r),
    );
  }
  // onnxruntime-node is an optional peer: npm did not install it, and doctor says so (auto uses the rest).
  const noNative = await sh("npx", ["--no-install", "exo-tune", "doctor", "--json"], app);
  const nrep = lastJson(noNative) as
    | { native?: { available: boolean; failure: string | null }; backend?: string }
    | null;
  const nativeDir = await stat(join(app, "node_modules/onnxruntime-node")).then(() => true, () => false);
  check(
    !nativeDir && nrep?.native?.available === false && nrep.native.failure === "not-installed" &&
      nrep.backend !== "native-cpu",
    "without onnxruntime-node (an optional peer, not installed by npm): doctor reports it absent, auto uses the rest",
    `installed: ${nativeDir}, native ${JSON.stringify(nrep?.native?.failure)}, backend ${nrep?.backend}`,
  );
  // WebGPU from the installed package, where Deno finds an adapter (CI installs Mesa's lavapipe and,
  // as in `deno task test`, requires it). Greedy tokens after the first may differ from wasm's on
  // near-ties, so only the golden checks apply.
  const probe = lastJson(await sh(`${BIN}/deno`, ["run", "-A", "npm:exo-tune", "doctor", "--json"], app)) as {
    webgpu?: { available: boolean; reason: string };
  } | null;
  if (probe?.webgpu?.available || process.env.CI === "true") {
    const r = await sh(
      `${BIN}/deno`,
      ["run", "-A", "app_deno.mjs", fixtures, join(work, "run-deno-webgpu"), "webgpu"],
      app,
    );
    const res = lastJson(r) as {
      steps: number;
      backend: string;
      loss: number;
      updateError: number;
      base: { ids: number[] };
    } | null;
    const lossErr = res ? Math.abs(res.loss - goldenLoss) / Math.abs(goldenLoss) : NaN;
    check(
      r.code === 0 && res?.backend === "webgpu" && res.steps === 1 && lossErr <= LOSS_TOL &&
        res.updateError <= UPDATE_TOL && res.base.ids[0] === goldenNext,
      "deno, WebGPU: one training step matches the golden step and generation starts with PyTorch's argmax",
      res ? `loss rel. error ${lossErr.toExponential(1)}, adapter error ${res.updateError.toExponential(1)}` : tail(r),
    );
  } else {
    console.log(`       (no WebGPU adapter for Deno here, so no WebGPU run: ${probe?.webgpu?.reason})`);
  }

  const demoOut = join(work, "demo");
  const demo = await sh("npx", [
    "--no-install",
    "exo-tune",
    "demo",
    "--max-steps",
    "1",
    "--reward-prompts",
    "2",
    "--samples",
    "1",
    "--backend",
    "wasm",
    "--out",
    demoOut,
    "--json",
  ], app);
  const d = lastJson(demo) as { train?: { steps: number }; before?: { pairs: number } } | null;
  const adapterWritten = await stat(join(demoOut, "adapter_model.safetensors")).then(() => true, () => false);
  check(
    demo.code === 0 && d?.train?.steps === 1 && d?.before?.pairs === 179 && adapterWritten,
    "npx exo-tune demo finds the bundled model and data in node_modules (1 step)",
    demo.code === 0 ? `${d?.before?.pairs} held-out pairs, adapter written: ${adapterWritten}` : tail(demo),
  );

  // 6. The native engine: onnxruntime-node installed beside exo-tune (npm 11 skips its postinstall,
  // which only downloads CUDA libraries; the variable covers older npm). From npm's cache: `npm ci`
  // in the repository put it there.
  const addNative = await sh(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", "onnxruntime-node@1.30.0"],
    app,
    { ONNXRUNTIME_NODE_INSTALL: "skip" },
  );
  if (addNative.code !== 0) {
    check(false, "npm install onnxruntime-node beside exo-tune", tail(addNative));
  } else {
    for (const [name, cmd, args] of [runtimes[0], runtimes[2]]) {
      const r = await sh(cmd, [...args, fixtures, join(work, `run-${name}-native`), "native-cpu"], app);
      const res = lastJson(r) as { backend: string; steps: number; loss: number; updateError: number } | null;
      const lossErr = res ? Math.abs(res.loss - goldenLoss) / Math.abs(goldenLoss) : NaN;
      check(
        r.code === 0 && res?.backend === "native-cpu" && res.steps === 1 && lossErr <= LOSS_TOL &&
          res.updateError <= UPDATE_TOL,
        `${name}, native-cpu (onnxruntime-node installed beside exo-tune): the golden step`,
        res
          ? `loss rel. error ${lossErr.toExponential(1)}, adapter error ${res.updateError.toExponential(1)}`
          : tail(r),
      );
    }
  }
} catch (e) {
  check(false, "package consumer test", (e as Error).message);
} finally {
  await rm(work, { recursive: true, force: true });
}
console.log(`package: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
