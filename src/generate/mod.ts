/**
 * Text generation with a KV cache: {@link Generator} (generate, stream, adapters merged or not),
 * the sampler and the streaming detokenizer.
 *
 * @module
 */

export {
  type FinishReason,
  type GeneratedSequence,
  type GenerateOptions,
  type GenerationResult,
  type GenerationTimings,
  Generator,
  type GeneratorOptions,
  type Prompt,
  resolveSampling,
  type StreamEvent,
} from "./generator.ts";
export {
  argmax,
  type Candidates,
  candidates,
  draw,
  logSoftmaxAt,
  sampleToken,
  type SamplingOptions,
} from "./sampling.ts";
export { type TextDelta, TextStream } from "./stop.ts";
export { KvDecoder, type StepOutput, type StepResult } from "./decoder.ts";
