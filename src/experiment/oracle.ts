/**
 * The oracle: the reward that judges sampled completions, pluggable. The bundled data's oracle is
 * VADER's compound sentiment score of prompt + completion (in [-1, 1], what `data/README.md` used to
 * make the pairs and reward groups). Users bring their own as a function ({@link functionOracle}) or
 * as a command ({@link commandOracle}) that reads JSON lines `{"prompt", "completion"}` on stdin and
 * prints one number per line (or `{"reward": x}`) on stdout.
 *
 * @module
 */

/** What the oracle judges: the prompt text and the sampled completion text (EOS removed). */
export interface OracleItem {
  prompt: string;
  completion: string;
}

/** A reward function over batches of completions. */
export interface Oracle {
  /** Shown in the results (`vader`, `command: ...`, or the function's name). */
  readonly name: string;
  score(items: readonly OracleItem[]): Promise<number[]>;
}

/** Wraps a per-item function (sync or async) as an oracle. */
export function functionOracle(
  name: string,
  fn: (prompt: string, completion: string) => number | Promise<number>,
): Oracle {
  return {
    name,
    async score(items) {
      const out: number[] = [];
      for (const it of items) out.push(await fn(it.prompt, it.completion));
      return checkRewards(name, items.length, out);
    },
  };
}

type Vader = { SentimentIntensityAnalyzer: { polarity_scores(text: string): { compound: number } } };

/** VADER's compound score of prompt + completion (the optional `vader-sentiment` package). */
export async function vaderOracle(): Promise<Oracle> {
  let vader: Vader;
  try {
    // An optional dependency: the library never needs it, only this oracle and the demo.
    vader = (await import("vader-sentiment")).default as Vader;
  } catch (e) {
    throw new Error(
      `The VADER oracle needs the vader-sentiment package, which cannot be loaded (${
        (e as Error).message
      }): install it (npm i vader-sentiment), or bring your own oracle (--oracle-cmd)`,
    );
  }
  return functionOracle("vader", (p, c) => vader.SentimentIntensityAnalyzer.polarity_scores(p + c).compound);
}

/**
 * An oracle run as a shell command (`sh -c`), once per batch: JSON lines `{"prompt","completion"}`
 * on stdin, one reward per line on stdout (a number, or an object with a numeric `reward`).
 */
export function commandOracle(command: string): Oracle {
  if (!command.trim()) throw new RangeError("--oracle-cmd is empty");
  const name = `command: ${command}`;
  return {
    name,
    async score(items) {
      const { spawn } = await import("node:child_process");
      const { Buffer } = await import("node:buffer");
      const input = items.map((it) => JSON.stringify({ prompt: it.prompt, completion: it.completion })).join("\n") +
        "\n";
      const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
        (resolve, reject) => {
          const child = spawn("sh", ["-c", command], { stdio: ["pipe", "pipe", "pipe"] });
          const out: Buffer[] = [], err: Buffer[] = [];
          child.stdout.on("data", (d: Buffer) => out.push(d));
          child.stderr.on("data", (d: Buffer) => err.push(d));
          child.on("error", reject);
          child.on("close", (c: number | null) =>
            resolve({
              code: c,
              stdout: Buffer.concat(out).toString("utf8"),
              stderr: Buffer.concat(err).toString("utf8"),
            }));
          child.stdin.on("error", () => {/* the exit code and stderr tell what went wrong */});
          child.stdin.end(input);
        },
      );
      if (code !== 0) {
        throw new Error(`The oracle command exited with code ${code}: ${command}\n${stderr.trim().slice(-2000)}`);
      }
      const lines = stdout.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
      if (lines.length !== items.length) {
        throw new Error(
          `The oracle command printed ${lines.length} lines for ${items.length} completions: it must print one reward per input line (${command})`,
        );
      }
      const rewards = lines.map((l, i) => parseReward(l, i + 1, command));
      return checkRewards(name, items.length, rewards);
    },
  };
}

function parseReward(line: string, n: number, command: string): number {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    v = undefined;
  }
  if (v !== null && typeof v === "object" && "reward" in v) v = (v as { reward: unknown }).reward;
  if (typeof v !== "number") {
    throw new Error(
      `The oracle command's output line ${n} is not a number or {"reward": number}: ${
        JSON.stringify(line.slice(0, 80))
      } (${command})`,
    );
  }
  return v;
}

/** Checks an oracle's answer: one finite number per item. */
export function checkRewards(name: string, expected: number, rewards: readonly number[]): number[] {
  if (rewards.length !== expected) {
    throw new Error(`Oracle ${name} returned ${rewards.length} rewards for ${expected} completions`);
  }
  rewards.forEach((r, i) => {
    if (typeof r !== "number" || !Number.isFinite(r)) {
      throw new Error(`Oracle ${name} returned a non-finite reward (${r}) for completion ${i}`);
    }
  });
  return [...rewards];
}
