/**
 * Builds the tuning page into `dist/web/` (step 3 of `deno task build`, after the library bundle):
 * a self-contained static site that any host serving it with COOP/COEP can publish.
 *
 * - `app.js`: the page's main thread (web/app.ts, bundled; no library code in it).
 * - `worker.js`: the training Worker (web/worker.ts, bundled), whose `../mod.ts` imports point at
 *   the library bundle `./exo-tune.js`, copied here from `dist/` with ONNX Runtime's `.wasm` files.
 * - `index.html`, `style.css`; the defaults the page loads: `models/review-gpt2/` and
 *   `data/pairs.jsonl`.
 *
 * @module
 */

import * as esbuild from "esbuild";
import { copyFile, cp, mkdir, rm, stat } from "node:fs/promises";
import { ORT_WASM_FILES } from "../wasm/stage.ts";

/** Maps the worker's imports of the library (`../mod.ts`) to the bundle beside it. */
const libraryAsBundle: esbuild.Plugin = {
  name: "library-as-bundle",
  setup(build) {
    build.onResolve({ filter: /(^|\/)mod\.ts$/ }, () => ({ path: "./exo-tune.js", external: true }));
  },
};

/** Writes `outDir` (default dist/web) from web/ and the bundle in `distDir` (default dist). */
export async function buildWeb(distDir = "dist", outDir = `${distDir}/web`): Promise<void> {
  try {
    await stat(`${distDir}/exo-tune.js`);
  } catch {
    throw new Error(`${distDir}/exo-tune.js is missing: the page is built from the library bundle (deno task build)`);
  }
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const common: esbuild.BuildOptions = {
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    sourcemap: true,
    logLevel: "warning",
  };
  await esbuild.build({ ...common, entryPoints: ["web/app.ts"], outfile: `${outDir}/app.js` });
  await esbuild.build({
    ...common,
    entryPoints: ["web/worker.ts"],
    outfile: `${outDir}/worker.js`,
    plugins: [libraryAsBundle],
  });
  for (const f of ["index.html", "style.css"]) await copyFile(`web/${f}`, `${outDir}/${f}`);
  for (const f of ["exo-tune.js", "exo-tune.js.map", ...ORT_WASM_FILES]) {
    await copyFile(`${distDir}/${f}`, `${outDir}/${f}`);
  }
  await cp("models/review-gpt2", `${outDir}/models/review-gpt2`, { recursive: true });
  await mkdir(`${outDir}/data`, { recursive: true });
  await copyFile("data/pairs.jsonl", `${outDir}/data/pairs.jsonl`);
}

if (import.meta.main) {
  await buildWeb();
  await esbuild.stop();
  console.log("dist/web/ written (the tuning page; serve it with `deno task serve`)");
}
