/**
 * Progress display for training: a one-line bar redrawn in place on a TTY, plain log lines
 * otherwise (CI logs, pipes). Writes to a caller-given sink, so the library never touches stdout.
 *
 * @module
 */

/** One progress update. */
export interface ProgressUpdate {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  accuracy: number | null;
  tokensPerSecond: number;
  /** Seconds left, estimated from the mean step time so far. */
  etaSeconds: number;
}

/** Where progress goes: `write` gets raw text; `isTTY` chooses the redrawn bar. */
export interface ProgressSink {
  write(text: string): void;
  isTTY: boolean;
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${s}s`;
}

/** The text of one update (no newline or carriage return). */
export function formatProgress(u: ProgressUpdate, width = 24): string {
  const frac = u.totalSteps > 0 ? Math.min(1, u.step / u.totalSteps) : 0;
  const filled = Math.round(frac * width);
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  const acc = u.accuracy === null ? "" : ` acc ${u.accuracy.toFixed(2)}`;
  return `[${bar}] step ${u.step}/${u.totalSteps} ep ${u.epoch} loss ${u.loss.toFixed(4)}${acc} ` +
    `${u.tokensPerSecond.toFixed(0)} tok/s eta ${formatDuration(u.etaSeconds)}`;
}

/** A reporter: redraws on a TTY (at most every `minIntervalMs`), prints every `every`-th step otherwise. */
export class ProgressReporter {
  #sink: ProgressSink;
  #every: number;
  #last = 0;
  #minIntervalMs: number;
  #drawn = false;

  constructor(sink: ProgressSink, options: { every?: number; minIntervalMs?: number } = {}) {
    this.#sink = sink;
    this.#every = options.every ?? 10;
    this.#minIntervalMs = options.minIntervalMs ?? 100;
  }

  update(u: ProgressUpdate): void {
    if (this.#sink.isTTY) {
      const now = Date.now();
      if (now - this.#last < this.#minIntervalMs && u.step !== u.totalSteps) return;
      this.#last = now;
      this.#sink.write(`\r\x1b[2K${formatProgress(u)}`);
      this.#drawn = true;
    } else if (u.step % this.#every === 0 || u.step === u.totalSteps || u.step === 1) {
      this.#sink.write(`${formatProgress(u)}\n`);
    }
  }

  /** Ends the bar's line (TTY) so later output starts on a fresh line. */
  finish(): void {
    if (this.#drawn) this.#sink.write("\n");
    this.#drawn = false;
  }
}
