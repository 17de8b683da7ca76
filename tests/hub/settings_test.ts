import assert from "node:assert/strict";
import { defaultCacheDir, isHubId, repoFolderName, resolveHubSettings } from "../../src/hub/settings.ts";
import { DownloadProgress, formatDownload } from "../../src/hub/progress.ts";

Deno.test("Hub ids vs paths", () => {
  for (const id of ["Qwen/Qwen2.5-0.5B-Instruct", "HuggingFaceTB/SmolLM2-135M", "org/name_v1.5"]) {
    assert.ok(isHubId(id), id);
  }
  // A bare name is a local directory, not a legacy Hub id.
  for (
    const p of [
      "gpt2",
      "m",
      "./models/x",
      "/abs/dir",
      "~/m",
      "a/b/c",
      "../x",
      "org/..",
      "org/name.git",
      "",
      "org/",
      "a//b",
    ]
  ) {
    assert.ok(!isHubId(p), p);
  }
  assert.equal(repoFolderName("Qwen/Qwen2.5-0.5B"), "models--Qwen--Qwen2.5-0.5B");
});

Deno.test("Hub settings follow huggingface_hub's environment variables and defaults", async () => {
  const noFile = () => Promise.resolve(null);
  const d = await resolveHubSettings({}, {}, "/home/u", noFile, true);
  assert.equal(d.endpoint, "https://huggingface.co");
  assert.equal(d.cacheDir, "/home/u/.cache/huggingface/hub");
  assert.equal(d.token, null);
  assert.equal(d.offline, false);
  assert.equal(d.revision, "main");
  assert.equal(d.store, "disk");
  const env = {
    HF_ENDPOINT: "https://hf-mirror.example/",
    HF_TOKEN: "hf_abc",
    HF_HUB_OFFLINE: "1",
    HF_HOME: "/data/hf",
  };
  const e = await resolveHubSettings({}, env, "/home/u", noFile, true);
  assert.deepEqual([e.endpoint, e.token, e.offline, e.cacheDir], [
    "https://hf-mirror.example",
    "hf_abc",
    true,
    "/data/hf/hub",
  ]);
  // Options win over the environment.
  const o = await resolveHubSettings({ offline: false, token: null, cacheDir: "/c" }, env, null, noFile, true);
  assert.deepEqual([o.offline, o.token, o.cacheDir], [false, null, "/c"]);
  assert.equal(defaultCacheDir({ HF_HUB_CACHE: "/x", HF_HOME: "/y" }, null), "/x");
  assert.equal(defaultCacheDir({ XDG_CACHE_HOME: "/xdg" }, "/home/u"), "/xdg/huggingface/hub");
  // The token file written by `hf auth login` is read when no token is set.
  const read: string[] = [];
  const t = await resolveHubSettings({}, { HF_HOME: "/data/hf" }, null, (p) => {
    read.push(p);
    return Promise.resolve("hf_from_file\n");
  }, true);
  assert.equal(t.token, "hf_from_file");
  assert.deepEqual(read, ["/data/hf/token"]);
  // Without a file system the Cache API store is the default and no token file is read.
  const b = await resolveHubSettings({}, {}, null, () => Promise.reject(new Error("no fs")), false);
  assert.equal(b.store, "cache-api");
});

Deno.test("download progress: a bar redrawn in place on a terminal, one line per file otherwise", () => {
  const tty: string[] = [];
  const p = new DownloadProgress({ write: (t) => tty.push(t), isTTY: true }, "model.safetensors", 2_000_000);
  p.update(2_000_000);
  p.finish();
  assert.ok(tty[0].startsWith(`\r\x1b[2Kmodel.safetensors [${"#".repeat(24)}] 2.0 MB/2.0 MB 100%`), tty[0]);
  assert.equal(tty.at(-1), "\n");
  const log: string[] = [];
  const q = new DownloadProgress({ write: (t) => log.push(t), isTTY: false }, "config.json", 821);
  q.update(821);
  q.finish();
  assert.deepEqual(log, ["downloaded config.json (821 B)\n"]);
  assert.equal(formatDownload("x", 500, 1000, 0, 10), "x [#####-----] 500 B/1 kB 50%");
});
