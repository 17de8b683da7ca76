/**
 * The fixture models with PyTorch goldens (`tests/fixtures/<name>/golden.json`, see the README
 * there). Every test that holds a model to a golden loops over one of these lists, so a new
 * family's fixture joins all of them by being listed here.
 */

/** One fixture per model family. */
export const FAMILY_FIXTURES = ["tiny-gpt2", "tiny-llama", "tiny-qwen3", "tiny-gemma3"] as const;

/**
 * Every fixture: the families', plus tiny-llama-v4 (tiny-llama's weights, adapters and goldens
 * with a transformers 4.x `config.json`), for the checks where the config layout matters.
 */
export const FIXTURE_MODELS = ["tiny-gpt2", "tiny-llama", "tiny-llama-v4", "tiny-qwen3", "tiny-gemma3"] as const;
