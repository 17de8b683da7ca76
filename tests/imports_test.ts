/**
 * The module graph of the library (mod.ts and everything it imports, type-only imports included,
 * as `deno info` reports it) has no import cycle: families depend on the shared layers, the
 * registry on the families, and the shared code (forward, load, score, generation) on the
 * registry, never the other way round.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);

interface ModuleInfo {
  specifier: string;
  dependencies?: { code?: { specifier?: string }; type?: { specifier?: string } }[];
}

/** The strongly connected components of more than one module (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], on = new Set<string>(), out: string[][] = [];
  let next = 0;
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

Deno.test("the library's modules import each other without cycles", async () => {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "mod.ts"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  const modules = JSON.parse(new TextDecoder().decode(r.stdout)).modules as ModuleInfo[];
  const local = (s: string) => s.startsWith(ROOT.href);
  const graph = new Map<string, string[]>();
  for (const m of modules.filter((m) => local(m.specifier))) {
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
      .filter((s): s is string => s !== undefined && local(s));
    graph.set(m.specifier, deps);
  }
  assert.ok(graph.size > 100, `expected the whole library in the graph, got ${graph.size} modules`);
  assert.ok([...graph.keys()].some((s) => s.endsWith("src/models/families/gemma3.ts")), "families are reached");
  const found = cycles(graph).map((c) => c.map((s) => s.slice(ROOT.href.length)).sort());
  assert.deepEqual(found, [], `import cycles: ${JSON.stringify(found)}`);
});
