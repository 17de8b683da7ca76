/**
 * `deno task build` (also npm's `prepack`, so `npm pack` never ships a stale build):
 *
 * 1. `dist/esm/`: the npm package's modules. TypeScript's `tsc` (scripts/npm/tsconfig.build.json) compiles
 *    `mod.ts` and the CLI (`src/cli/bin.ts`, package.json `bin`) to ESM `.js` + `.d.ts`, one file per
 *    source, relative `.ts` imports rewritten to `.js`. Nothing is bundled: dependencies stay bare
 *    imports resolved in the user's node_modules (and an optional `import("onnxruntime-node")`
 *    stays optional). Deno does not strip types under node_modules and Node 20 cannot at all, so the
 *    package ships JavaScript.
 * 2. `dist/exo-tune.js`: one ESM bundle of `mod.ts` made by esbuild (for browsers and Bun), with ONNX
 *    Runtime Web's `.wasm` files staged beside it (see wasm/README.md).
 * 3. `dist/web/`: the tuning page built from that bundle (scripts/build_web.ts; `deno task serve`).
 *
 * @module
 */

import * as esbuild from "esbuild";
import { chmod, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stageOrtWasm } from "../wasm/stage.ts";
import { buildWeb } from "./build_web.ts";

/** Every file under `dir`, recursively. */
async function* walkFiles(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* walkFiles(path);
    else yield path;
  }
}

const outDir = "dist";
const esmDir = `${outDir}/esm`;

// 1. The npm package's modules. Start clean so that a deleted source never ships.
await rm(esmDir, { recursive: true, force: true });
const tsc = await new Deno.Command("node_modules/.bin/tsc", {
  args: ["-p", "scripts/npm/tsconfig.build.json"],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!tsc.success) {
  console.error("tsc failed (see above): the npm package was not built");
  Deno.exit(1);
}
// tsc rewrites `.ts` imports to `.js` in the emitted JavaScript but not in the `.d.ts` files. TypeScript
// 5+ and Deno resolve either, but `.js` is what every TypeScript version and tool expects next to a
// `.d.ts`, so the declarations import `.js` too.
let declarations = 0;
for await (const path of walkFiles(esmDir)) {
  if (!path.endsWith(".d.ts")) continue;
  const text = await readFile(path, "utf8");
  const fixed = text.replace(/(["'])(\.\.?\/[^"'\n]+)\.ts\1/g, "$1$2.js$1");
  if (fixed !== text) await writeFile(path, fixed);
  declarations++;
}
const bin = `${esmDir}/src/cli/bin.js`;
await chmod(bin, 0o755); // npm sets this on install too; a local `./dist/esm/src/cli/bin.js` works as well
console.log(`${esmDir}/ written (mod.js, ${declarations} .d.ts; CLI ${bin})`);

// 2. The bundle.
const result = await esbuild.build({
  entryPoints: ["mod.ts"],
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "es2022",
  mainFields: ["module", "main"],
  conditions: ["onnxruntime-web-use-extern-wasm", "import", "default"],
  outfile: `${outDir}/exo-tune.js`,
  // node: builtins are only reached on the local-file paths (Deno, Bun, Node), never in browsers;
  // onnxruntime-node (a native engine, optional) cannot run in a browser and is imported lazily.
  external: ["node:*", "onnxruntime-node"],
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

// 3. The tuning page.
await buildWeb(outDir);
console.log("dist/web/ written (the tuning page; `deno task serve` serves it)");
await esbuild.stop();
