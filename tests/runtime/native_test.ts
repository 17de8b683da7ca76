/**
 * The native backends (onnxruntime-node): the backend table, native-cpu against wasm, `auto`'s
 * order and reasons, and the errors a user sees when a native backend is asked for but cannot run:
 * no FFI permission in Deno, the optional package not installed (a copy of the project without it),
 * no GPU for native-webgpu. Each refusal exits 2 and says what to install or allow.
 */

import assert from "node:assert/strict";
import { Graph } from "../../src/onnx/graph.ts";
import * as op from "../../src/onnx/ops.ts";
import { serializeModel } from "../../src/onnx/serialize.ts";
import { BackendUnavailableError, resolveBackend } from "../../src/runtime/backend.ts";
import { AUTO_ORDER, BACKEND_NAMES, BACKENDS } from "../../src/runtime/backends.ts";
import { Engine } from "../../src/runtime/session.ts";
import { nativeCpuOrSkip, nativeWebgpuOrSkip } from "../support/native.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const FX = `${ROOT}/tests/fixtures`;
const native = await nativeCpuOrSkip();
const nativeGpu = await nativeWebgpuOrSkip();

Deno.test("the backend table: auto's order covers every backend once; device outputs only on GPUs", () => {
  assert.deepEqual([...AUTO_ORDER].sort(), [...BACKEND_NAMES].sort());
  for (const b of BACKEND_NAMES) {
    const s = BACKENDS[b];
    if (s.deviceOutputs) assert.equal(s.device, "gpu", b);
    assert.equal(s.readback !== null, s.deviceOutputs, `${b}: a readback exactly where outputs stay on the device`);
    assert.equal(s.package === "onnxruntime-node", b.startsWith("native-"), b);
  }
});

/** y = softmax(x W + b) with W, b initializers above the external-data threshold, and float64-free ops. */
function testGraph(): { bytes: ReturnType<typeof serializeModel>; x: Float32Array } {
  const g = new Graph("native_vs_wasm");
  const x = g.input("x", "float32", ["n", 64]);
  const w = Float32Array.from({ length: 64 * 512 }, (_, i) => Math.sin(i * 0.37) * 0.1);
  const b = Float32Array.from({ length: 512 }, (_, i) => Math.cos(i) * 0.01);
  const y = op.softmax(
    op.add(
      op.matmul(x, g.initializer("w", { dtype: "float32", shape: [64, 512], data: w })),
      g.initializer("b", { dtype: "float32", shape: [512], data: b }),
    ),
    -1,
  );
  g.output(op.reduceSum(op.mul(y, y), [-1], false), "y");
  return {
    bytes: serializeModel(g, { externalDataThreshold: 1024 }),
    x: Float32Array.from({ length: 3 * 64 }, (_, i) => Math.cos(i * 0.11)),
  };
}

Deno.test({
  name: "native-cpu runs a model with external data like wasm; threads default to every core",
  ignore: !native,
  async fn() {
    const { bytes, x } = testGraph();
    assert.ok(bytes.externalData, "the weights went to external data");
    const out: Float32Array[] = [];
    for (const b of ["native-cpu", "wasm"] as const) {
      const e = await Engine.create(b, b === "native-cpu" ? { threads: 1 } : {});
      const s = await e.createSession(bytes);
      out.push(Float32Array.from(await e.read((await s.run({ x: e.tensor(x, [3, 64]) })).y) as Float32Array));
      await s.release();
    }
    // Float32 sums of 64 products in another order: ~1e-8 apart; 1e-6 is 100x that.
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs(out[0][i] - out[1][i]) <= 1e-6, `row ${i}: ${out[0][i]} vs ${out[1][i]}`);
    }
    assert.equal((await Engine.create("native-cpu")).threads, navigator.hardwareConcurrency);
    assert.equal((await Engine.create("native-cpu", { threads: 1 })).threads, 1);
    await assert.rejects(() => Engine.create("native-cpu", { threads: 0 }), RangeError);
  },
});

Deno.test({
  name: "auto tries every backend in order and says why each was taken or passed over",
  ignore: !native,
  async fn() {
    const c = await resolveBackend("auto", { survey: true });
    assert.deepEqual(c.tried.map((t) => t.backend), [...AUTO_ORDER]);
    for (const t of c.tried) {
      assert.ok(t.reason.length > 0, `${t.backend} has a reason`);
      assert.notEqual(t.available, null, `${t.backend} was probed in a survey`);
    }
    assert.equal(c.tried.filter((t) => t.status === "taken").length, 1);
    const hardware = c.webgpu.available && !c.webgpu.adapter?.isFallbackAdapter;
    // This project's CI machine has no GPU: native-cpu comes before wasm there.
    if (!hardware && !nativeGpu) {
      assert.equal(c.backend, "native-cpu");
      const w = c.tried.find((t) => t.backend === "wasm")!;
      assert.equal(w.status, "passed-over");
      assert.match(w.reason, /native-cpu was taken first/);
      // Without a survey, backends after the one taken are not tried at all.
      const lazy = await resolveBackend("auto");
      assert.equal(lazy.backend, "native-cpu");
      assert.equal(lazy.tried.find((t) => t.backend === "wasm")!.status, "not-tried");
    }
  },
});

Deno.test({
  name: "native-webgpu without a GPU: a BackendUnavailableError naming what it needs",
  ignore: nativeGpu,
  async fn() {
    const e = await resolveBackend("native-webgpu").then(() => null, (e) => e);
    assert.ok(e instanceof BackendUnavailableError, String(e));
    assert.equal(e.backend, "native-webgpu");
    assert.match(e.message, /^native-webgpu was requested but is not available: /);
    assert.match(e.message, native ? /hardware GPU with Vulkan/ : /onnxruntime-node/);
    assert.match(e.message, /--backend auto or wasm/);
  },
});

async function cli(args: string[], opts: { cwd?: string; permissions?: string[] } = {}) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...(opts.permissions ?? ["-A"]), "src/cli/main.ts", ...args],
    cwd: opts.cwd ?? ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: r.code, stdout: new TextDecoder().decode(r.stdout), stderr: new TextDecoder().decode(r.stderr) };
}

const TRAIN = ["train", "--model", `${FX}/tiny-gpt2`, "--data", `${FX}/pairs.jsonl`, "--max-steps", "1"];

Deno.test({
  name: "Deno without --allow-ffi: native-cpu asked for exits 2 naming the flag; auto falls back",
  ignore: !native,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "no-ffi-" });
    try {
      const perms = ["--allow-read", "--allow-write", "--allow-env"];
      const r = await cli([...TRAIN, "--out", `${out}/run`, "--backend", "native-cpu"], { permissions: perms });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /native-cpu was requested but is not available: .*--allow-ffi/);
      const d = await cli(["doctor", "--json"], { permissions: perms });
      assert.equal(d.code, 0, d.stderr);
      const report = JSON.parse(d.stdout);
      assert.equal(report.native.failure, "permission");
      assert.notEqual(report.backend, "native-cpu");
      const nc = report.backends.find((b: { backend: string }) => b.backend === "native-cpu");
      assert.equal(nc.status, "passed-over");
      assert.match(nc.reason, /--allow-ffi/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

/**
 * A copy of the project as a consumer who omitted the optional dependency has it: src/ and the
 * manifests, and node_modules holding every package but onnxruntime-node (links to ours).
 */
async function withoutNativePackage(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "no-native-" });
  await new Deno.Command("cp", { args: ["-r", `${ROOT}/src`, `${ROOT}/deno.json`, `${ROOT}/package.json`, dir] })
    .output();
  await Deno.mkdir(`${dir}/node_modules`);
  for await (const e of Deno.readDir(`${ROOT}/node_modules`)) {
    if (e.name === "onnxruntime-node") continue;
    await Deno.symlink(`${ROOT}/node_modules/${e.name}`, `${dir}/node_modules/${e.name}`);
  }
  return dir;
}

Deno.test("without onnxruntime-node installed: exit 2 with the install command; doctor and auto use the rest", async () => {
  const dir = await withoutNativePackage();
  try {
    const r = await cli([...TRAIN, "--out", `${dir}/run`, "--backend", "native-cpu"], { cwd: dir });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /native-cpu was requested but is not available: onnxruntime-node is not installed: npm install onnxruntime-node@1\.30\.0/,
    );
    const d = await cli(["doctor", "--json"], { cwd: dir });
    assert.equal(d.code, 0, d.stderr);
    const report = JSON.parse(d.stdout);
    assert.equal(report.native.available, false);
    assert.equal(report.native.failure, "not-installed");
    assert.ok(report.backend === "wasm" || report.backend === "webgpu", report.backend);
    for (const b of ["native-cpu", "native-webgpu"]) {
      const t = report.backends.find((x: { backend: string }) => x.backend === b);
      assert.equal(t.available, false, b);
      assert.match(t.reason, /not installed/, b);
    }
    // Training on auto still works (on wasm, or WebGPU on a hardware adapter).
    const t = await cli([...TRAIN, "--out", `${dir}/run2`, "--json"], { cwd: dir });
    assert.equal(t.code, 0, t.stderr);
    assert.ok(["wasm", "webgpu"].includes(JSON.parse(t.stdout).backend));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the browser bundle does not contain onnxruntime-node (the import is lazy and not followed)", async () => {
  const esbuild = await import("esbuild");
  try {
    // The options of scripts/build.ts that decide what gets bundled, but onnxruntime-node is not
    // declared external here: the bundler must not follow the lazy import by itself.
    const r = await esbuild.build({
      entryPoints: [`${ROOT}/mod.ts`],
      bundle: true,
      format: "esm",
      platform: "neutral",
      mainFields: ["module", "main"],
      conditions: ["onnxruntime-web-use-extern-wasm", "import", "default"],
      external: ["node:*"],
      alias: { "@huggingface/hub": `${ROOT}/node_modules/@huggingface/hub/dist/browser/index.mjs` },
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(r.metafile!.inputs);
    assert.ok(inputs.some((p) => p.includes("src/runtime/ort_native.ts")), "the loader itself is bundled");
    assert.deepEqual(inputs.filter((p) => p.includes("onnxruntime-node")), []);
    assert.ok(inputs.some((p) => p.includes("onnxruntime-web")), "ORT Web is bundled");
  } finally {
    await esbuild.stop();
  }
});
