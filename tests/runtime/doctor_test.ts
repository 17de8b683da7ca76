import assert from "node:assert/strict";
import { doctor } from "../../src/cli/doctor.ts";
import { resolveBackend } from "../../src/runtime/backend.ts";

const CI = Deno.env.get("CI") === "true";

/** The version of the onnxruntime-web package installed here (what a constant in our code could drift from). */
async function installedOrtVersion(): Promise<string> {
  const pkg = new URL("../../node_modules/onnxruntime-web/package.json", import.meta.url);
  return JSON.parse(await Deno.readTextFile(pkg)).version;
}

Deno.test("doctor --json has the documented fields and auto's choice follows the adapter", async () => {
  const r = await doctor("auto");
  // The version the loaded library reports about itself, which is the installed package's.
  const installed = await installedOrtVersion();
  assert.match(installed, /^\d+\.\d+\.\d+/);
  assert.equal(r.ort, installed);
  assert.equal(r.ortVersions.web, installed);
  assert.equal(typeof r.ortVersions.common, "string");
  assert.equal(r.wasm.ok, true, r.wasm.error ?? "wasm failed");
  assert.equal(typeof r.webgpu.available, "boolean");
  assert.equal(typeof r.webgpu.reason, "string");
  // Without a hardware GPU, auto takes native-cpu where onnxruntime-node loads, else wasm.
  const cpu = r.native.available ? "native-cpu" : "wasm";
  if (r.webgpu.available) {
    const a = r.webgpu.adapter as { isFallbackAdapter: boolean; description: string; limits: Record<string, number> };
    assert.ok(a.limits.maxBufferSize > 0);
    // auto takes WebGPU only on a hardware adapter.
    if (a.isFallbackAdapter) {
      assert.ok(r.backend === cpu || r.backend === "native-webgpu", r.backend);
      assert.match(r.backends.find((b) => b.backend === "webgpu")!.reason, /fallback/);
    } else assert.equal(r.backend, "webgpu");
  } else {
    assert.ok(r.backend === cpu || r.backend === "native-webgpu", r.backend);
    assert.equal(r.webgpu.adapter, null);
  }
  // Every backend is listed, in auto's order, with why it was taken or passed over.
  assert.deepEqual(r.backends.map((b) => b.backend), ["webgpu", "native-webgpu", "native-cpu", "wasm"]);
  assert.equal(r.backends.find((b) => b.status === "taken")?.backend, r.backend);
  for (const b of r.backends) assert.ok(b.reason.length > 0 && b.status !== "not-tried", `${b.backend}: probed`);
  // The report is what --json prints: it must survive JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(r)).backend, r.backend);
});

Deno.test("--backend wasm forces wasm; --backend webgpu forces webgpu or fails with the reason", async () => {
  assert.equal((await doctor("wasm")).backend, "wasm");
  const probe = await resolveBackend("auto");
  if (probe.webgpu.available) {
    const r = await doctor("webgpu");
    assert.equal(r.backend, "webgpu");
  } else {
    assert.ok(!CI, `CI must have a WebGPU adapter (lavapipe): ${probe.webgpu.reason}`);
    await assert.rejects(() => resolveBackend("webgpu"), /WebGPU was requested but is not available/);
  }
  await assert.rejects(() => resolveBackend("cuda" as never), /Unknown backend "cuda"/);
});

Deno.test("doctor's text report prints the loaded ORT version; a bad --backend exits 2 naming the flag", async () => {
  const run = async (...args: string[]) => {
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "src/cli/main.ts", "doctor", ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: o.code, stdout: new TextDecoder().decode(o.stdout), stderr: new TextDecoder().decode(o.stderr) };
  };
  const text = await run("--backend", "wasm");
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    // onnxruntime-node's version follows on the same line ("not loaded" where it is absent).
    new RegExp(`^ort +onnxruntime-web ${(await installedOrtVersion()).replaceAll(".", "\\.")}; onnxruntime-node `, "m"),
  );
  const bad = await run("--backend", "cuda");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^--backend must be one of auto, webgpu, wasm, native-cpu, native-webgpu, got cuda/);
});

Deno.test("the CLI prints one JSON object for doctor --json", async () => {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", "doctor", "--json", "--backend", "wasm"],
    stdout: "piped",
    stderr: "null",
  });
  const out = await cmd.output();
  assert.equal(out.code, 0);
  const obj = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(obj.backend, "wasm");
  assert.equal(obj.ort, await installedOrtVersion());
  assert.ok("webgpu" in obj && "available" in obj.webgpu && "adapter" in obj.webgpu && "reason" in obj.webgpu);
});
