/**
 * One checkpoint's evaluation on held-out prompts: samples from the policy itself at temperature 1,
 * their oracle reward, and the sequence-level KL(π_θ ‖ π_sft) estimated without bias as the mean
 * over those samples of
 *
 *   log π_θ(y|x) − log π_sft(y|x),   y ~ π_θ(·|x)
 *
 * log π_θ(y|x) comes from the generator itself (`logprobs: true`: the log-softmax of the very logits
 * each token was drawn from, no temperature, top-k or top-p), log π_sft(y|x) from the scorer on the
 * base model, over the same token ids: the generated ones, EOS included when it ended the sequence
 * (stopping is part of y), nothing after the new-token cap (both models are scored on the same
 * truncated sequence). Standard errors are clustered by prompt (`stats.ts`).
 *
 * @module
 */

import type { Generator } from "../generate/generator.ts";
import type { Scorer } from "../models/score.ts";
import type { EvalPrompt } from "./data.ts";
import type { Oracle } from "./oracle.ts";
import { clusteredMeanSe, type Estimate } from "./stats.ts";

/** One sampled completion and what it was scored. */
export interface PolicySample {
  prompt: number;
  text: string;
  /** The sampled ids (EOS included when it ended the sequence): what both log-probs are of. */
  tokenIds: number[];
  tokens: number;
  finish: "eos" | "length" | "stop";
  logpPolicy: number;
  logpSft: number;
  reward: number;
}

/** A checkpoint's point on the reward–KL plane, with what it is made of. */
export interface PolicyEval {
  reward: Estimate;
  kl: Estimate;
  samples: number;
  prompts: number;
  /** Mean new tokens per sample (EOS counted). */
  meanTokens: number;
  /** Fraction of samples that ended with EOS (the rest hit the new-token cap). */
  eosFraction: number;
  seconds: { generate: number; score: number; oracle: number };
}

/** Options of {@link sampleAndScore}. */
export interface SampleOptions {
  samplesPerPrompt: number;
  maxNewTokens: number;
  /** Prompts per generate call. */
  decodePrompts: number;
  seed: number;
  /** Skip the SFT scoring (the generator runs the SFT model itself: log π_sft = log π_θ). */
  isSft?: boolean;
}

/**
 * Samples `samplesPerPrompt` completions of every prompt from the generator's current model and
 * scores them with the oracle and, unless `isSft`, the SFT scorer.
 */
export async function sampleAndScore(
  gen: Generator,
  sft: Scorer | null,
  oracle: Oracle,
  prompts: readonly EvalPrompt[],
  o: SampleOptions,
): Promise<{ samples: PolicySample[]; seconds: PolicyEval["seconds"] }> {
  const seconds = { generate: 0, score: 0, oracle: 0 };
  const samples: PolicySample[] = [];
  for (let start = 0; start < prompts.length; start += o.decodePrompts) {
    const chunk = prompts.slice(start, start + o.decodePrompts);
    let t = performance.now();
    const res = await gen.generate(chunk.map((p) => p.ids), {
      temperature: 1,
      topK: 0,
      topP: 1,
      numSamples: o.samplesPerPrompt,
      maxNewTokens: o.maxNewTokens,
      seed: o.seed + start,
      logprobs: true,
    });
    seconds.generate += (performance.now() - t) / 1000;
    t = performance.now();
    const seqs = res.sequences.map((s) => ({ promptIds: s.promptIds, completionIds: s.tokenIds }));
    const logpSft = o.isSft || !sft
      ? res.sequences.map((s) => s.logprob!)
      : await sft.score(seqs, { batchSize: Math.max(8, Math.min(64, seqs.length)) });
    seconds.score += (performance.now() - t) / 1000;
    t = performance.now();
    const rewards = await oracle.score(
      res.sequences.map((s) => ({ prompt: chunk[s.prompt].text, completion: s.text })),
    );
    seconds.oracle += (performance.now() - t) / 1000;
    res.sequences.forEach((s, i) =>
      samples.push({
        prompt: start + s.prompt,
        text: s.text,
        tokenIds: s.tokenIds,
        tokens: s.tokenIds.length,
        finish: s.finishReason,
        logpPolicy: s.logprob!,
        logpSft: logpSft[i],
        reward: rewards[i],
      })
    );
  }
  return { samples, seconds };
}

/** Summarizes samples into the checkpoint's reward and KL estimates. */
export function summarize(samples: readonly PolicySample[], seconds: PolicyEval["seconds"]): PolicyEval {
  const prompt = samples.map((s) => s.prompt);
  return {
    reward: clusteredMeanSe(samples.map((s) => s.reward), prompt),
    kl: clusteredMeanSe(samples.map((s) => s.logpPolicy - s.logpSft), prompt),
    samples: samples.length,
    prompts: new Set(prompt).size,
    meanTokens: samples.reduce((a, s) => a + s.tokens, 0) / samples.length,
    eosFraction: samples.filter((s) => s.finish === "eos").length / samples.length,
    seconds,
  };
}
