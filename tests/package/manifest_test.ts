// The two manifests describe one package: npm's package.json (compiled dist/esm/) and JSR's
// deno.json (TypeScript sources). They must agree on the version, and each entry point must map to
// a source that exists. (The built package itself is checked by consumer.ts: deno task test:package.)
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";

const ROOT = new URL("../../", import.meta.url);
const json = (p: string) => JSON.parse(readFileSync(new URL(p, ROOT), "utf8"));
const pkg = json("package.json");
const deno = json("deno.json");

/** The source that tsc compiles to a dist/esm/ path (dist/esm/src/cli/bin.js <- src/cli/bin.ts). */
function sourceOf(distPath: string): string {
  const m = distPath.match(/^\.?\/?dist\/esm\/(.+)\.(js|d\.ts)$/);
  assert.ok(m, `${distPath} is not under dist/esm/`);
  return `${m[1]}.ts`;
}

Deno.test("package.json and deno.json carry the same version, and JSR's name is scoped", () => {
  assert.equal(deno.version, pkg.version);
  assert.match(deno.version, /^\d+\.\d+\.\d+(-[\w.]+)?$/);
  assert.equal(deno.name, `@exo-tune/${pkg.name}`);
});

Deno.test("npm's exports, types and bin point into dist/esm/ at compiled sources that exist", () => {
  const root = pkg.exports["."];
  assert.equal(Object.keys(root)[0], "types", "types must come first for TypeScript to see it");
  assert.deepEqual(Object.keys(root), ["types", "import", "default"]);
  for (const p of [root.types, root.import, root.default, pkg.types, pkg.bin["exo-tune"]]) {
    assert.ok(existsSync(new URL(sourceOf(p), ROOT)), `${p}: ${sourceOf(p)} is missing`);
  }
  assert.equal(sourceOf(root.import), "mod.ts");
  assert.ok(readFileSync(new URL("src/cli/bin.ts", ROOT), "utf8").startsWith("#!/usr/bin/env node\n"), "bin shebang");
  // Everything the demo reads from the installed package ships.
  const demo = readFileSync(new URL("src/cli/demo.ts", ROOT), "utf8");
  const bundled = [...demo.matchAll(/bundled\("([^"]+)"\)/g)].map((m) => m[1]);
  assert.ok(bundled.length >= 4, `the demo's bundled files: ${bundled}`);
  for (const f of bundled) {
    assert.ok(pkg.files.some((e: string) => f === e || f.startsWith(e) || `${f}/` === e), `${f} is not in "files"`);
    assert.ok(existsSync(new URL(f, ROOT)), `${f} is missing`);
  }
});

Deno.test("JSR's exports exist and are inside what deno publish includes", () => {
  for (const p of Object.values(deno.exports) as string[]) {
    assert.ok(existsSync(new URL(p, ROOT)), `${p} is missing`);
    const rel = p.replace(/^\.\//, "");
    assert.ok(deno.publish.include.some((i: string) => rel === i || rel.startsWith(i)), `${p} is not published`);
  }
});
