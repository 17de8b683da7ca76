/**
 * Gates of the tests that run on onnxruntime-node. CI installs it (an optional dependency that
 * `npm ci` brings), so under `CI=true` a native-cpu that does not load fails the test file instead
 * of skipping; locally its tests are skipped with a note. native-webgpu needs a hardware GPU, which
 * CI does not have: its tests run where one exists (bench/gpu-check.sh) and are skipped elsewhere.
 */

import { resolveBackend } from "../../src/runtime/backend.ts";

/** True when native-cpu runs here; throws under CI when it does not. */
export async function nativeCpuOrSkip(): Promise<boolean> {
  try {
    await resolveBackend("native-cpu");
    return true;
  } catch (e) {
    if (Deno.env.get("CI") === "true") throw e;
    console.warn(`Skipping a native-cpu test: ${(e as Error).message}`);
    return false;
  }
}

/** True when onnxruntime-node's WebGPU EP found an adapter here (never required). */
export async function nativeWebgpuOrSkip(): Promise<boolean> {
  try {
    await resolveBackend("native-webgpu");
    return true;
  } catch (e) {
    console.warn(`Skipping a native-webgpu test: ${(e as Error).message.split(". ")[0]}`);
    return false;
  }
}
