/**
 * Where the bundled review model and its data live, for the commands that use them (`demo`,
 * `experiment`): the package root, found from this module's own location.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package root, where the bundled model and data live: the nearest folder above this module
 * with exo-tune's package.json. That is the repository root in a clone (`src/cli/` is two levels
 * down) and `node_modules/exo-tune/` in an installed package (the compiled CLI sits in
 * `dist/esm/src/cli/`, four levels down).
 */
export function packageRoot(): string {
  const here = new URL(".", import.meta.url);
  if (here.protocol !== "file:") {
    throw new Error(
      `The bundled review model is not available from ${here.origin}: run this command from the npm package (npx exo-tune ...) or a clone (deno task ...)`,
    );
  }
  let dir = fileURLToPath(here);
  for (;;) {
    try {
      if (JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).name === "exo-tune") return dir;
    } catch { /* no package.json here (or not ours): keep going up */ }
    const up = dirname(dir);
    if (up === dir) throw new Error(`Cannot find exo-tune's package.json above ${fileURLToPath(here)}`);
    dir = up;
  }
}

/** A bundled file or folder (models/..., data/...) by its path in the package. */
export function bundled(p: string): string {
  return join(packageRoot(), p);
}

/** `20261128-153000`: a UTC time stamp for run directories. */
export function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
}
