#!/usr/bin/env node
/**
 * The installed package's `exo-tune` command (package.json `bin`, compiled to
 * `dist/esm/src/cli/bin.js` by `deno task build`): `npx exo-tune doctor`, `bunx exo-tune doctor`,
 * `deno run -A npm:exo-tune doctor`. It runs {@link main} unconditionally because Node 20 has no
 * `import.meta.main`; in a clone, `deno task cli` runs `main.ts` directly.
 *
 * @module
 */

import process from "node:process";
import { main } from "./main.ts";

// Exit explicitly: ORT's wasm worker threads would otherwise keep Node and Bun alive.
process.exit(await main(process.argv.slice(2)));
