import assert from "node:assert/strict";

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/cli/main.ts", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("the CLI lists its commands and rejects unknown ones with exit code 2", async () => {
  const help = await cli("--help");
  assert.equal(help.code, 0);
  for (const c of ["doctor", "tokenize", "score", "train", "generate", "demo"]) {
    assert.match(help.stdout, new RegExp(c));
  }
  const bad = await cli("frobnicate");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /Unknown command "frobnicate"/);
});

Deno.test("train without required options explains itself and exits 2", async () => {
  const r = await cli("train", "--model", "models/review-gpt2");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--data is required/);
});
