/**
 * Stages ONNX Runtime Web's WebAssembly files next to a bundle.
 *
 * ORT's bundled builds (`onnxruntime-web/wasm`, `onnxruntime-web/webgpu`) embed their JS glue but
 * fetch the `.wasm` binary relative to the importing module's URL (`import.meta.url`). A bundle
 * in `dist/` therefore needs the binaries beside it, under the names ORT asks for. Node, Deno and
 * Bun importing from `node_modules` need nothing: ORT finds its files in its own `dist/`.
 *
 * @module
 */

import { copyFile, mkdir, stat } from "node:fs/promises";
import { join } from "node:path";

/** The binaries the two builds we use load: plain SIMD+threads (wasm EP) and JSPI/asyncify (WebGPU EP). */
export const ORT_WASM_FILES = [
  "ort-wasm-simd-threaded.wasm",
  "ort-wasm-simd-threaded.mjs",
  "ort-wasm-simd-threaded.asyncify.wasm",
  "ort-wasm-simd-threaded.asyncify.mjs",
  "ort-wasm-simd-threaded.jsep.wasm",
  "ort-wasm-simd-threaded.jsep.mjs",
];

/** Copies the ORT wasm files from `ortDist` (node_modules/onnxruntime-web/dist) into `outDir`. */
export async function stageOrtWasm(ortDist: string, outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const staged: string[] = [];
  for (const f of ORT_WASM_FILES) {
    const from = join(ortDist, f);
    try {
      await stat(from);
    } catch {
      throw new Error(`ONNX Runtime Web file ${from} is missing: run npm install`);
    }
    await copyFile(from, join(outDir, f));
    staged.push(f);
  }
  return staged;
}
