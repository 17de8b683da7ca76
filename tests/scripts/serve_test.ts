/**
 * The page's static server (scripts/serve.ts): cross-origin isolation headers on every response,
 * content types the browser insists on (wasm, module scripts), HEAD for `urlFiles().exists`,
 * mounts, and no way out of the served folders.
 */

import assert from "node:assert/strict";
import { serve } from "../../scripts/serve.ts";

Deno.test("serve: COOP/COEP on every response, types, HEAD, mounts, 404, no path escapes", async () => {
  const root = await Deno.makeTempDir();
  const other = await Deno.makeTempDir();
  await Deno.writeTextFile(`${root}/index.html`, "<!doctype html>");
  await Deno.writeFile(`${root}/x.wasm`, new Uint8Array([0, 97, 115, 109]));
  await Deno.writeTextFile(`${root}/m.mjs`, "export {}");
  await Deno.mkdir(`${root}/sub`);
  await Deno.writeTextFile(`${other}/a.json`, "{}");
  const secret = `${root}/../secret-${root.split("/").pop()}.txt`;
  await Deno.writeTextFile(secret, "no");
  const s = await serve({ root, port: 0, mounts: { "/fx/": other } });
  try {
    const get = async (path: string, method = "GET") => {
      const r = await fetch(new URL(path, s.url), { method, redirect: "manual" });
      const body = await r.text();
      return { r, body };
    };
    const index = await get("/");
    assert.equal(index.r.status, 200);
    assert.equal(index.body, "<!doctype html>");
    assert.equal(index.r.headers.get("cross-origin-opener-policy"), "same-origin");
    assert.equal(index.r.headers.get("cross-origin-embedder-policy"), "require-corp");
    assert.equal(index.r.headers.get("cross-origin-resource-policy"), "same-origin");
    assert.equal((await get("/x.wasm")).r.headers.get("content-type"), "application/wasm");
    assert.match((await get("/m.mjs")).r.headers.get("content-type")!, /^text\/javascript/);
    const head = await get("/x.wasm", "HEAD");
    assert.equal(head.r.status, 200);
    assert.equal(head.r.headers.get("content-length"), "4");
    assert.equal(head.body, "");
    assert.equal((await get("/fx/a.json")).body, "{}");
    const missing = await get("/nope.txt");
    assert.equal(missing.r.status, 404);
    assert.equal(missing.r.headers.get("cross-origin-embedder-policy"), "require-corp");
    assert.equal((await get("/sub")).r.status, 301);
    // URLs normalize "/../" (also "%2e%2e") away; "..%2f" reaches the server as "../" once decoded.
    const escape = await get(`/..%2fsecret-${root.split("/").pop()}.txt`);
    assert.equal(escape.r.status, 400);
    assert.notEqual(escape.body, "no");
    assert.equal((await get("/", "POST")).r.status, 405);
  } finally {
    await s.close();
    await Deno.remove(secret);
    await Deno.remove(root, { recursive: true });
    await Deno.remove(other, { recursive: true });
  }
});
