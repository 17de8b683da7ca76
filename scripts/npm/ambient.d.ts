// Modules without type declarations that the package's sources import; for the npm build's tsc only
// (Deno types untyped npm packages as `any` by itself). Nothing here reaches the emitted `.d.ts`.
declare module "vader-sentiment";
