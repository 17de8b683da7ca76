/**
 * `deno task build`: bundles `mod.ts` with esbuild into `dist/exo-tune.js` (ESM, for browsers and
 * Bun) and stages ONNX Runtime Web's `.wasm` files beside it (see wasm/README.md).
 *
 * @module
 */

import * as esbuild from "esbuild";
import { stageOrtWasm } from "../wasm/stage.ts";

const outDir = "dist";
const result = await esbuild.build({
  entryPoints: ["mod.ts"],
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  mainFields: ["module", "main"],
  conditions: ["import", "default"],
  outfile: `${outDir}/exo-tune.js`,
  // node: builtins are only reached on the local-file paths (Deno, Bun, Node), never in browsers.
  external: ["node:*"],
  // @huggingface/hub's main build imports Node's fs/os/path at the top (for its cache helpers, which
  // exo-tune does not use); its browser build has the same API calls without them.
  alias: { "@huggingface/hub": "./node_modules/@huggingface/hub/dist/browser/index.mjs" },
  sourcemap: true,
  metafile: true,
  logLevel: "warning",
});
const staged = await stageOrtWasm("node_modules/onnxruntime-web/dist", outDir);
const bytes = Object.values(result.metafile.outputs).reduce((a, o) => a + o.bytes, 0);
console.log(`dist/exo-tune.js written (${(bytes / 1e6).toFixed(1)} MB with map); staged ${staged.length} ORT files`);
await esbuild.stop();
