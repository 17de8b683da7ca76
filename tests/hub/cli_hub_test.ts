/**
 * The CLI with Hub ids and huggingface_hub's environment variables (HF_ENDPOINT, HF_HOME, HF_TOKEN,
 * HF_HUB_OFFLINE), in a subprocess against the fake Hub on 127.0.0.1.
 */

import assert from "node:assert/strict";
import { loadTokenizer } from "../../src/models/tokenizer.ts";
import { FakeHub, repoFiles } from "./_fake_hub.ts";

const FIXTURES = new URL("../fixtures/", import.meta.url).pathname;
const MAIN = new URL("../../src/cli/main.ts", import.meta.url).pathname;
const C = "5555555555555555555555555555555555555555";

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { HF_TOKEN: "", HUGGING_FACE_HUB_TOKEN: "", HF_HUB_OFFLINE: "", HF_HUB_CACHE: "", ...env },
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("cli: --model org/name through HF_ENDPOINT, HF_HOME, HF_TOKEN and HF_HUB_OFFLINE", async () => {
  const files = await repoFiles(`${FIXTURES}tiny-gpt2`, ["config.json", "tokenizer.json", "tokenizer_config.json"]);
  const hub = FakeHub.start({
    "exo-test/tiny-gpt2": { commits: { [C]: files }, refs: { main: C } },
    "exo-test/gated": { commits: { [C]: files }, refs: { main: C }, token: "hf_secret" },
  });
  const home = await Deno.makeTempDir({ prefix: "exo-hf-home-" });
  try {
    const want = (await loadTokenizer(`${FIXTURES}tiny-gpt2`)).encode("The movie was").join(" ");
    const env = { HF_ENDPOINT: hub.url, HF_HOME: home };
    let r = await cli(["tokenize", "--model", "exo-test/tiny-gpt2", "--text", "The movie was"], env);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), want);
    assert.ok((await Deno.stat(`${home}/hub/models--exo-test--tiny-gpt2/refs/main`)).isFile);
    // A gated repo: 401 without a token (exit 2, says HF_TOKEN), fine with it.
    r = await cli(["tokenize", "--model", "exo-test/gated", "--text", "a"], env);
    assert.equal(r.code, 2);
    assert.match(r.err, /answered 401 .*set HF_TOKEN/);
    r = await cli(["tokenize", "--model", "exo-test/gated", "--text", "The movie was"], {
      ...env,
      HF_TOKEN: "hf_secret",
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), want);
    // Offline, with nothing listening any more: the cache answers; an uncached revision says so.
    await hub.close();
    r = await cli(["tokenize", "--model", "exo-test/tiny-gpt2", "--text", "The movie was"], {
      ...env,
      HF_HUB_OFFLINE: "1",
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), want);
    r = await cli(["tokenize", "--model", "exo-test/tiny-gpt2", "--revision", "v2", "--text", "a"], {
      ...env,
      HF_HUB_OFFLINE: "1",
    });
    assert.equal(r.code, 2);
    assert.match(r.err, /offline \(HF_HUB_OFFLINE\): exo-test\/tiny-gpt2@v2 is not in the cache/);
  } finally {
    await hub.close().catch(() => {});
    await Deno.remove(home, { recursive: true });
  }
});
