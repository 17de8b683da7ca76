/**
 * Models by Hub id against a real HTTP server on 127.0.0.1 in the Hub's URL layout
 * (`_fake_hub.ts`): the cache layout is huggingface_hub's, the first load downloads and the second
 * makes no request, offline loads come from the cache, a cut transfer resumes with a range request,
 * a corrupt file is refused and leaves nothing behind, 401/404 say what to do.
 */

import assert from "node:assert/strict";
import { loadModel } from "../../src/models/load.ts";
import { loadTokenizer } from "../../src/models/tokenizer.ts";
import { HubError, type HubOptions } from "../../src/hub/settings.ts";
import { parseSafetensors, serializeSafetensors, toTensorData } from "../../src/models/safetensors.ts";
import { FakeHub, type FakeRepo, gitOid, repoFiles, sha256 } from "./_fake_hub.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
const GPT2_FILES = [
  "config.json",
  "generation_config.json",
  "model.safetensors",
  "tokenizer.json",
  "tokenizer_config.json",
];
const C1 = "1111111111111111111111111111111111111111";
const C2 = "2222222222222222222222222222222222222222";
const C3 = "3333333333333333333333333333333333333333";

async function repos(): Promise<Record<string, FakeRepo>> {
  const gpt2 = await repoFiles(`${FIXTURES}tiny-gpt2`, GPT2_FILES);
  // v1: the same model with another generation config (so the two commits differ in one blob).
  const v1 = gpt2.map((f) =>
    f.path === "generation_config.json"
      ? { ...f, bytes: new TextEncoder().encode('{"eos_token_id": 511, "max_new_tokens": 7}\n') }
      : f
  );
  // tiny-llama in two shards with an index, as save_pretrained writes big checkpoints.
  const llama = await repoFiles(`${FIXTURES}tiny-llama`, ["config.json", "tokenizer.json", "tokenizer_config.json"]);
  const { tensors } = parseSafetensors(await Deno.readFile(`${FIXTURES}tiny-llama/model.safetensors`));
  const names = [...tensors.keys()];
  const half = Math.ceil(names.length / 2);
  const weightMap: Record<string, string> = {};
  const shard = (part: string[], file: string) => {
    for (const n of part) weightMap[n] = file;
    return serializeSafetensors(Object.fromEntries(part.map((n) => [n, toTensorData(tensors.get(n)!)])));
  };
  const s1 = shard(names.slice(0, half), "model-00001-of-00002.safetensors");
  const s2 = shard(names.slice(half), "model-00002-of-00002.safetensors");
  const index = new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap }));
  return {
    "exo-test/tiny-gpt2": { commits: { [C1]: v1, [C2]: gpt2 }, refs: { main: C2, v1: C1 } },
    "exo-test/gated-gpt2": { commits: { [C2]: gpt2 }, refs: { main: C2 }, token: "hf_secret" },
    "exo-test/sharded-llama": {
      commits: {
        [C3]: [
          ...llama,
          { path: "model.safetensors.index.json", bytes: index, lfs: false },
          { path: "model-00001-of-00002.safetensors", bytes: s1, lfs: true },
          { path: "model-00002-of-00002.safetensors", bytes: s2, lfs: true },
        ],
      },
      refs: { main: C3 },
    },
  };
}

async function withHub(fn: (hub: FakeHub, cache: string, opts: (o?: HubOptions) => HubOptions) => Promise<void>) {
  const hub = FakeHub.start(await repos());
  const cache = await Deno.makeTempDir({ prefix: "exo-hub-" });
  const opts = (o: HubOptions = {}): HubOptions => ({
    endpoint: hub.url,
    cacheDir: cache,
    token: null,
    progress: false,
    store: "disk",
    ...o,
  });
  try {
    await fn(hub, cache, opts);
  } finally {
    await hub.close();
    await Deno.remove(cache, { recursive: true });
  }
}

const REPO_DIR = "models--exo-test--tiny-gpt2";

async function ls(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch { /* absent */ }
  return out.sort();
}

Deno.test("hub: first load downloads into huggingface_hub's layout, the second makes no request", async () => {
  await withHub(async (hub, cache, opts) => {
    const model = await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() });
    assert.deepEqual(model.hub, { repo: "exo-test/tiny-gpt2", revision: "main", commit: C2 });
    const root = `${cache}/${REPO_DIR}`;
    assert.equal(model.dir, `${root}/snapshots/${C2}`);
    // refs/main holds the commit; blobs are named by sha256 (LFS) or git blob id (plain files).
    assert.equal(await Deno.readTextFile(`${root}/refs/main`), C2);
    const files = await repoFiles(`${FIXTURES}tiny-gpt2`, GPT2_FILES);
    const want = files.map((f) => (f.lfs ? sha256(f.bytes) : gitOid(f.bytes))).sort();
    assert.deepEqual(await ls(`${root}/blobs`), want);
    for (const f of files) {
      const link = await Deno.readLink(`${root}/snapshots/${C2}/${f.path}`);
      assert.equal(link, `../../blobs/${f.lfs ? sha256(f.bytes) : gitOid(f.bytes)}`);
    }
    // Files the repo does not have are recorded, so an offline load knows they are not missing.
    assert.deepEqual(await ls(`${root}/.no_exist/${C2}`), ["chat_template.jinja", "special_tokens_map.json"]);
    // The model is the fixture's.
    const local = await loadModel(`${FIXTURES}tiny-gpt2`);
    assert.deepEqual(model.config, local.config);
    assert.deepEqual(
      model.weights.get("transformer.h.0.attn.c_attn.weight"),
      local.weights.get("transformer.h.0.attn.c_attn.weight"),
    );
    assert.deepEqual(model.tokenizer.encode("The movie was great"), local.tokenizer.encode("The movie was great"));
    const paths = hub.requests.map((r) => `${r.method} ${r.path}`);
    assert.ok(paths.includes(`GET /api/models/exo-test/tiny-gpt2/revision/main`), paths.join("\n"));
    assert.ok(paths.includes(`POST /api/models/exo-test/tiny-gpt2/paths-info/${C2}`));
    assert.ok(paths.includes(`GET /exo-test/tiny-gpt2/resolve/${C2}/model.safetensors`));

    const n = hub.requests.length;
    const again = await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() });
    assert.deepEqual(hub.since(n), []);
    assert.equal(again.dir, model.dir);
    // The tokenizer alone is in the cache too: no request either.
    await loadTokenizer("exo-test/tiny-gpt2", undefined, { hub: opts() });
    assert.deepEqual(hub.since(n), []);
    // refresh asks the Hub for the branch's commit again, but downloads nothing new.
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ refresh: true }) });
    assert.deepEqual(hub.since(n).map((r) => r.path), ["/api/models/exo-test/tiny-gpt2/revision/main"]);
  });
});

Deno.test("hub: offline loads come from the cache; a missing model says what to do", async () => {
  await withHub(async (hub, cache, opts) => {
    await assert.rejects(
      loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ offline: true }) }),
      (e: Error) =>
        e instanceof HubError &&
        /offline \(HF_HUB_OFFLINE\): exo-test\/tiny-gpt2@main is not in the cache/.test(e.message) &&
        e.message.includes(cache),
    );
    assert.equal(hub.requests.length, 0);
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() });
    await hub.close(); // nothing to answer any more
    const m = await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ offline: true }) });
    assert.equal(m.hub?.commit, C2);
    // A commit hash needs no ref; one never fetched is not there.
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ offline: true, revision: C2 }) });
    await assert.rejects(
      loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ offline: true, revision: "v1" }) }),
      /exo-test\/tiny-gpt2@v1 is not in the cache/,
    );
  });
});

Deno.test("hub: revisions (tag, commit) get their own snapshots sharing blobs; renamed repos redirect", async () => {
  await withHub(async (hub, cache, opts) => {
    const main = await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() });
    const n = hub.requests.length;
    const v1 = await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ revision: "v1" }) });
    assert.equal(v1.hub?.commit, C1);
    assert.equal(v1.generation.maxNewTokens, 7);
    assert.equal(main.generation.maxNewTokens, undefined);
    assert.equal(await Deno.readTextFile(`${cache}/${REPO_DIR}/refs/v1`), C1);
    // Only the one differing file is transferred; the weights' blob is reused.
    const transfers = hub.since(n).filter((r) => r.path.includes("/resolve/") || r.path.startsWith("/cdn/"));
    assert.deepEqual(transfers.map((r) => r.path), [`/exo-test/tiny-gpt2/resolve/${C1}/generation_config.json`]);
    // A commit hash skips the revision API.
    await Deno.remove(`${cache}/${REPO_DIR}`, { recursive: true });
    const k = hub.requests.length;
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ revision: C1 }) });
    assert.ok(!hub.since(k).some((r) => r.path.includes("/revision/")));
    // A renamed repo: the Hub answers 307 to the new name.
    hub.renamed["old-org/tiny-gpt2"] = "exo-test/tiny-gpt2";
    const moved = await loadModel("old-org/tiny-gpt2", undefined, { hub: opts() });
    assert.equal(moved.hub?.commit, C2);
    assert.ok(hub.requests.some((r) => r.path.startsWith("/api/models/old-org/")));
  });
});

Deno.test("hub: a cut transfer resumes with a range request (in the same call, and across calls)", async () => {
  await withHub(async (hub, cache, opts) => {
    const size = (await Deno.stat(`${FIXTURES}tiny-gpt2/model.safetensors`)).size;
    hub.cuts.set("model.safetensors", { times: 1, fraction: 0.4 });
    const m = await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() });
    const cdn = hub.requests.filter((r) => r.path.startsWith("/cdn/"));
    assert.deepEqual(cdn.map((r) => r.range), [null, `bytes=${Math.floor(size * 0.4)}-`]);
    assert.equal(m.weights.size > 0, true);
    const blobs = await ls(`${cache}/${REPO_DIR}/blobs`);
    assert.ok(!blobs.some((b) => b.endsWith(".incomplete")), blobs.join(","));

    // Across calls: no retries, so the first call gives up and keeps the partial file.
    await Deno.remove(`${cache}/${REPO_DIR}`, { recursive: true });
    hub.cuts.set("model.safetensors", { times: 1, fraction: 0.25 });
    await assert.rejects(
      loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ maxRetries: 0 }) }),
      (e: Error) =>
        e instanceof HubError &&
        new RegExp(`model\\.safetensors: the transfer was cut at ${Math.floor(size * 0.25)} of ${size} bytes`).test(
          e.message,
        ) &&
        /the next run resumes from it/.test(e.message),
    );
    const partial = (await ls(`${cache}/${REPO_DIR}/blobs`)).filter((b) => b.endsWith(".incomplete"));
    assert.equal(partial.length, 1);
    assert.equal((await Deno.stat(`${cache}/${REPO_DIR}/blobs/${partial[0]}`)).size, Math.floor(size * 0.25));
    assert.equal(await ls(`${cache}/${REPO_DIR}/snapshots/${C2}`).then((l) => l.includes("model.safetensors")), false);
    const n = hub.requests.length;
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() });
    assert.deepEqual(
      hub.since(n).filter((r) => r.path.startsWith("/cdn/")).map((r) => r.range),
      [`bytes=${Math.floor(size * 0.25)}-`],
    );
    assert.ok(!(await ls(`${cache}/${REPO_DIR}/blobs`)).some((b) => b.endsWith(".incomplete")));
  });
});

Deno.test("hub: a corrupt file is refused and nothing half-written is left", async () => {
  await withHub(async (hub, cache, opts) => {
    hub.corrupt.add("model.safetensors");
    await assert.rejects(
      loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() }),
      (e: Error) =>
        e instanceof HubError &&
        /model\.safetensors: the downloaded bytes hash to [0-9a-f]{64} but the Hub lists sha256/.test(e.message) &&
        /nothing entered the cache/.test(e.message),
    );
    const blobs = await ls(`${cache}/${REPO_DIR}/blobs`);
    const weights = sha256(await Deno.readFile(`${FIXTURES}tiny-gpt2/model.safetensors`));
    assert.ok(!blobs.some((b) => b.startsWith(weights)), blobs.join(","));
    assert.ok(!(await ls(`${cache}/${REPO_DIR}/snapshots/${C2}`)).includes("model.safetensors"));
    // A corrupt plain file (git blob id check) is refused the same way.
    hub.corrupt.clear();
    hub.corrupt.add("tokenizer.json");
    await Deno.remove(`${cache}/${REPO_DIR}`, { recursive: true });
    await assert.rejects(loadTokenizer("exo-test/tiny-gpt2", undefined, { hub: opts() }), /Hub lists git-sha1/);
    hub.corrupt.clear();
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() });
  });
});

Deno.test("hub: gated repos need the token (401 says HF_TOKEN); unknown repos and revisions 404", async () => {
  await withHub(async (hub, _cache, opts) => {
    await assert.rejects(
      loadModel("exo-test/gated-gpt2", undefined, { hub: opts() }),
      (e: Error) => e instanceof HubError && e.status === 401 && /set HF_TOKEN/.test(e.message),
    );
    await assert.rejects(
      loadModel("exo-test/gated-gpt2", undefined, { hub: opts({ token: "hf_wrong" }) }),
      /the token does not give access/,
    );
    const m = await loadModel("exo-test/gated-gpt2", undefined, { hub: opts({ token: "hf_secret" }) });
    assert.equal(m.hub?.commit, C2);
    assert.ok(
      hub.requests.filter((r) => r.path.includes("gated")).slice(-3).every((r) => r.auth === "Bearer hf_secret"),
    );
    await assert.rejects(
      loadModel("exo-test/no-such-model", undefined, { hub: opts() }),
      (e: Error) =>
        e instanceof HubError && e.status === 404 &&
        e.message.startsWith(
          "exo-test/no-such-model is not a local model directory, so it was looked up as a Hub id:",
        ) &&
        /has no model exo-test\/no-such-model at revision main/.test(e.message),
    );
    await assert.rejects(
      loadModel("exo-test/tiny-gpt2", undefined, { hub: opts({ revision: "nope" }) }),
      /at revision nope \(404: Invalid rev id: nope\)/,
    );
    // Nothing listening: a network error says how to work offline.
    await hub.close();
    await assert.rejects(
      loadModel("exo-test/tiny-gpt2", undefined, { hub: opts() }),
      /cannot reach http:\/\/127\.0\.0\.1:\d+ .*HF_HUB_OFFLINE=1/,
    );
  });
});

Deno.test("hub: sharded safetensors (index + shards) are fetched and load", async () => {
  await withHub(async (_hub, cache, opts) => {
    const m = await loadModel("exo-test/sharded-llama", undefined, { hub: opts() });
    const local = await loadModel(`${FIXTURES}tiny-llama`);
    assert.deepEqual([...m.weights.keys()].sort(), [...local.weights.keys()].sort());
    assert.deepEqual(m.weights.get("model.norm.weight"), local.weights.get("model.norm.weight"));
    assert.deepEqual(await ls(`${cache}/models--exo-test--sharded-llama/snapshots/${C3}`), [
      "config.json",
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
      "model.safetensors.index.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
  });
});

Deno.test("hub: a cache written by Python's huggingface_hub (same layout, no server) loads offline", async () => {
  const cache = await Deno.makeTempDir({ prefix: "exo-hub-py-" });
  try {
    // What hf_hub_download left when run once against the fake Hub (huggingface_hub 1.33): blobs by
    // etag (sha256 for LFS files, git blob id for plain ones), relative symlinks, refs/main.
    const root = `${cache}/models--someone--tiny-gpt2`;
    await Deno.mkdir(`${root}/blobs`, { recursive: true });
    await Deno.mkdir(`${root}/snapshots/${C1}`, { recursive: true });
    await Deno.mkdir(`${root}/refs`);
    await Deno.writeTextFile(`${root}/refs/main`, C1);
    for (const f of await repoFiles(`${FIXTURES}tiny-gpt2`, GPT2_FILES)) {
      const etag = f.lfs ? sha256(f.bytes) : gitOid(f.bytes);
      await Deno.writeFile(`${root}/blobs/${etag}`, f.bytes);
      await Deno.symlink(`../../blobs/${etag}`, `${root}/snapshots/${C1}/${f.path}`);
    }
    // huggingface_hub 1.33 records no .no_exist markers for optional files it was never asked for.
    const m = await loadModel("someone/tiny-gpt2", undefined, {
      hub: { cacheDir: cache, offline: true, progress: false, store: "disk" },
    });
    assert.equal(m.dir, `${root}/snapshots/${C1}`);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("hub: the Cache API store (browsers): download, no second request, resume, corrupt refused, offline", async () => {
  const { CACHE_NAME } = await import("../../src/hub/browser_cache.ts");
  await caches.delete(CACHE_NAME);
  await withHub(async (hub, _cache, opts) => {
    const o = (x: HubOptions = {}) => opts({ store: "cache-api", ...x });
    hub.corrupt.add("model.safetensors");
    await assert.rejects(loadModel("exo-test/tiny-gpt2", undefined, { hub: o() }), /nothing entered the cache/);
    hub.corrupt.clear();
    const size = (await Deno.stat(`${FIXTURES}tiny-gpt2/model.safetensors`)).size;
    hub.cuts.set("model.safetensors", { times: 1, fraction: 0.5 });
    const n0 = hub.requests.length;
    const m = await loadModel("exo-test/tiny-gpt2", undefined, { hub: o() });
    assert.equal(m.dir, `${REPO_DIR}/snapshots/${C2}`);
    assert.deepEqual(
      hub.since(n0).filter((r) => r.path.startsWith("/cdn/")).map((r) => r.range),
      [null, `bytes=${Math.floor(size * 0.5)}-`],
    );
    const local = await loadModel(`${FIXTURES}tiny-gpt2`);
    assert.deepEqual(m.weights.get("transformer.wte.weight"), local.weights.get("transformer.wte.weight"));
    const n = hub.requests.length;
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: o() });
    assert.deepEqual(hub.since(n), []);
    await hub.close();
    await loadModel("exo-test/tiny-gpt2", undefined, { hub: o({ offline: true }) });
  });
  await caches.delete(CACHE_NAME);
});
