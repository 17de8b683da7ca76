/**
 * `opfsFiles` (src/io/opfs.ts) in Chromium, through the library bundle the page serves: the
 * FileSource/FileSink contract as `localFiles` keeps it, atomic writes (a reader racing a write sees
 * the old or the new bytes, never a mix), directory renames, and the journal that finishes a
 * directory move a closed tab left half done.
 */

import assert from "node:assert/strict";
import { browserAvailable, openSession } from "./_browser.ts";

const available = await browserAvailable();
const opts = { ignore: !available, sanitizeOps: false, sanitizeResources: false };

Deno.test("opfsFiles keeps the FileSink contract in Chromium", opts, async () => {
  const s = await openSession();
  try {
    await s.page.goto(s.server.url);
    const r = await s.page.evaluate(async () => {
      const url = "/exo-tune.js"; // a variable: the type checker must not resolve it
      const { opfsFiles } = await import(url);
      const f = opfsFiles("contract");
      const out: Record<string, unknown> = {};
      const error = async (fn: () => Promise<unknown>) => {
        try {
          await fn();
          return null;
        } catch (e) {
          return (e as Error).message;
        }
      };
      await f.writeText("a/b/c.txt", "one");
      await f.writeText("a/b/c.txt", "two");
      out.overwrite = await f.readText("a/b/c.txt");
      out.noTemps = await f.list("a/b");
      await f.appendText("a/log.jsonl", "x\n");
      await f.appendText("a/log.jsonl", "y\n");
      out.append = await f.readText("a/log.jsonl");
      out.exists = [await f.exists("a/b/c.txt"), await f.exists("a/b"), await f.exists("a/nope"), await f.exists("")];
      out.listMissing = await f.list("nope/deeper");
      out.missing = await error(() => f.readBytes("a/missing.txt"));
      out.dotdot = await error(() => f.readText("a/../x"));
      await f.writeBytes("a/bytes.bin", new Uint8Array([1, 2, 3]));
      out.bytes = Array.from(await f.readBytes("a/bytes.bin"));
      // Files: rename replaces the target.
      await f.writeText("a/old.txt", "old");
      await f.writeText("a/new.txt", "new");
      await f.rename("a/new.txt", "a/old.txt");
      out.renameFile = [await f.readText("a/old.txt"), await f.exists("a/new.txt")];
      // Directories: moved with their tree; a taken target is refused.
      await f.mkdir("ck/.tmp/sub");
      await f.writeText("ck/.tmp/x.json", "{}");
      await f.writeText("ck/.tmp/sub/y.bin", "y");
      await f.rename("ck/.tmp", "ck/step-1");
      out.renameDir = [
        (await f.list("ck")).sort(),
        (await f.list("ck/step-1")).sort(),
        await f.readText("ck/step-1/sub/y.bin"),
        (await f.list("")).sort(),
      ];
      await f.mkdir("ck/other");
      out.renameOnto = await error(() => f.rename("ck/other", "ck/step-1"));
      await f.remove("ck/step-1");
      await f.remove("ck/never-there");
      out.removed = (await f.list("ck")).sort();
      // Atomic writes: reads racing a rewrite see 1 MiB of 65s or 4 MiB of 66s, never a mix.
      await f.writeBytes("big.bin", new Uint8Array(1 << 20).fill(65));
      const write = f.writeBytes("big.bin", new Uint8Array(4 << 20).fill(66));
      let done = false;
      void write.then(() => done = true);
      const seen = new Set<string>();
      let reads = 0;
      while (!done || reads < 3) {
        try {
          const b: Uint8Array = await f.readBytes("big.bin");
          const uniform = b.every((v) => v === b[0]);
          seen.add(`${b.length}:${uniform ? b[0] : "mixed"}`);
        } catch (e) {
          seen.add((e as Error).message); // the instant of the move itself (see below)
        }
        reads++;
        if (done && reads >= 3) break;
      }
      await write;
      // One read after the write has settled must see the new bytes (the loop may have ended with its
      // last read still racing the write on a busy machine).
      const after: Uint8Array = await f.readBytes("big.bin");
      seen.add(`${after.length}:${after.every((v) => v === after[0]) ? after[0] : "mixed"}`);
      out.after = `${after.length}:${after[0]}`;
      out.atomic = [...seen].sort();
      out.reads = reads;
      return out;
    });
    assert.equal(r.overwrite, "two");
    assert.deepEqual(r.noTemps, ["c.txt"], "no temporary file is left after a write");
    assert.equal(r.append, "x\ny\n");
    assert.deepEqual(r.exists, [true, true, false, true]);
    assert.deepEqual(r.listMissing, []);
    assert.equal(r.missing, "File not found: a/missing.txt");
    assert.match(r.dotdot as string, /"\.\." is not allowed/);
    assert.deepEqual(r.bytes, [1, 2, 3]);
    assert.deepEqual(r.renameFile, ["new", false]);
    assert.deepEqual(r.renameDir, [["step-1"], ["sub", "x.json"], "y", ["a", "ck"]]);
    assert.match(r.renameOnto as string, /ck\/step-1 exists/);
    assert.deepEqual(r.removed, ["other"]);
    // Old bytes, new bytes, or (observed in Chromium 156, at the instant of the move) no file; never a
    // part of either.
    const atomic = r.atomic as string[];
    const allowed = ["1048576:65", "4194304:66", "File not found: big.bin"];
    assert.ok(atomic.every((x) => allowed.includes(x)), `a reader saw ${atomic.join(", ")}`);
    assert.equal(r.after, "4194304:66", "the settled write is read back");
  } finally {
    await s.close();
  }
});

Deno.test("opfsFiles finishes a directory move that a closed tab left half done", opts, async () => {
  const s = await openSession();
  try {
    await s.page.goto(s.server.url);
    const r = await s.page.evaluate(async () => {
      // The state a tab closed mid-rename leaves: the journal, some files moved, some not.
      let root = await navigator.storage.getDirectory();
      root = await root.getDirectoryHandle("rec", { create: true });
      const put = async (dir: FileSystemDirectoryHandle, name: string, text: string) => {
        const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
        await w.write(text);
        await w.close();
      };
      const ck = await root.getDirectoryHandle("checkpoints", { create: true });
      const tmp = await ck.getDirectoryHandle(".step-000004.tmp", { create: true });
      const moved = await ck.getDirectoryHandle("step-000004", { create: true });
      await put(moved, "adapter_config.json", "{}");
      await put(tmp, "trainer_state.json", '{"step":4}');
      await put(await tmp.getDirectoryHandle("sub", { create: true }), "z.bin", "z");
      await put(
        root,
        ".exo-tune-rename.json",
        JSON.stringify({ from: "checkpoints/.step-000004.tmp", to: "checkpoints/step-000004" }),
      );
      const url = "/exo-tune.js";
      const { opfsFiles } = await import(url);
      const f = opfsFiles("rec");
      return {
        checkpoints: (await f.list("checkpoints")).sort(),
        step: (await f.list("checkpoints/step-000004")).sort(),
        state: await f.readText("checkpoints/step-000004/trainer_state.json"),
        nested: await f.readText("checkpoints/step-000004/sub/z.bin"),
        rootEntries: (await Array.fromAsync(root.keys())).sort(),
      };
    });
    assert.deepEqual(r.checkpoints, ["step-000004"]);
    assert.deepEqual(r.step, ["adapter_config.json", "sub", "trainer_state.json"]);
    assert.equal(r.state, '{"step":4}');
    assert.equal(r.nested, "z");
    assert.deepEqual(r.rootEntries, ["checkpoints"], "the journal is gone once the move is finished");
  } finally {
    await s.close();
  }
});
