/**
 * A Deno HTTP server that serves generations and tunes its model online from its users' feedback.
 * `deno run -A examples/online_server.ts [model] [dir]`, then:
 *   POST /generate {"prompt"}                 -> {"id", "completions": [a, b]}: two samples of the live model
 *   POST /feedback {"id", "choice": 0 | 1}    (A/B) or {"id", "thumbs": "up" | "down"} (on a, with b as its foil),
 *                  or a pair {"prompt", "chosen", "rejected"}  -> {"acknowledged": its index in the feedback log}
 *   GET  /stats                               -> records acknowledged, trained and pending; updates done
 * @module
 */
import { Generator, loadModel, type OnlineOptions, OnlineTuner } from "../mod.ts";

export async function onlineServer(model: string, options: Omit<OnlineOptions, "model" | "generator"> = {}) {
  const generator = await Generator.create(await loadModel(model));
  // An update every 8 new pairs (+ 8 replayed) in a Worker; each adapter reaches `generator` between generations.
  const tuner = await OnlineTuner.create({ model, generator, updateEvery: 8, replay: 8, worker: true, ...options });
  const served = new Map<string, object[]>(); // generation id -> its pair each way round, until rated
  async function handler(req: Request): Promise<Response> {
    const path = new URL(req.url).pathname, body = (await req.json().catch(() => null)) ?? {};
    if (path === "/stats") return Response.json(tuner.stats);
    if (path === "/generate" && typeof body.prompt === "string") {
      const s = (await generator.generate(body.prompt, { maxNewTokens: 32, temperature: 0.8, numSamples: 2 }))
        .sequences;
      // The tokens sampled, exactly (text would be tokenized anew); the text rides along for the log's readers.
      const pair = (w: number) => ({
        prompt_ids: s[w].promptIds,
        chosen_ids: s[w].tokenIds,
        rejected_ids: s[1 - w].tokenIds,
        text: { prompt: body.prompt, chosen: s[w].text, rejected: s[1 - w].text },
      });
      const id = crypto.randomUUID();
      served.set(id, [pair(0), pair(1)]);
      if (served.size > 10_000) served.delete(served.keys().next().value!); // the oldest, never rated
      return Response.json({ id, completions: s.map((x) => x.text) });
    }
    if (path !== "/feedback") return Response.json({ error: "POST /generate, /feedback; GET /stats" }, { status: 404 });
    const better = body.choice ?? ["up", "down"].indexOf(body.thumbs);
    const record = served.get(body.id)?.[better] ?? body; // else a pair as sent, validated like a JSONL line
    try {
      const { index } = await tuner.add(record); // resolves once the record is in the feedback log
      served.delete(body.id);
      return Response.json({ acknowledged: index });
    } catch (e) {
      return Response.json({ error: (e as Error).message }, { status: 400 }); // feedback[3]: field "chosen": ...
    }
  }
  return { handler, tuner, generator, close: () => tuner.close().then(() => generator.release()) };
}

if (import.meta.main) {
  const app = await onlineServer(Deno.args[0] ?? "models/review-gpt2", { dir: Deno.args[1] ?? "runs/online" });
  Deno.serve({ port: 8000 }, app.handler);
}
