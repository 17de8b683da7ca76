/**
 * Dimension expressions: the size of a symbolic axis as a polynomial in named dims with rational
 * coefficients, e.g. `batch*seq`, `past+seq`, `2*seq`, `rows/2`, `past+1`.
 *
 * A shape stays exact through reshape, concat, slice and pad: `[batch, seq, 64]` reshaped to
 * `[-1, 64]` is `[batch*seq, 64]` (not a fresh name), and back to `[batch, seq, 64]`; concatenating
 * `past` and `seq` keys gives `past+seq`, which is the attention mask's declared `past+seq`. Two
 * dims are equal when their canonical forms are equal, so `===` on `Dim` values works: every
 * symbolic dim in a graph is stored in canonical form (see `Graph`).
 *
 * Canonical form: terms sorted by degree (highest first), then by their symbols; the constant
 * last; a coefficient of 1 omitted, a denominator after `/`: `batch*seq+2*past-1`, `rows/2`.
 * A string that is not an expression of identifiers and integers (`"x y"`) is one opaque symbol,
 * written `{x y}`.
 *
 * Symbols stand for sizes, so for proofs (`dimAtLeast`) they are >= 0.
 *
 * @module
 */

/** One dimension: a fixed size or a symbolic expression bound at run time. */
export type Dim = number | string;

/** A term `num/den · s1 · s2 · ...` (symbols sorted, with repetition; den > 0, the fraction reduced). */
interface Term {
  readonly syms: readonly string[];
  readonly num: number;
  readonly den: number;
}

/** A polynomial: canonical terms, no zero coefficients, no two terms with the same symbols. */
type Poly = readonly Term[];

/** The error of a malformed or non-integer dimension expression. */
export class DimError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DimError";
  }
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

function term(syms: readonly string[], num: number, den = 1): Term {
  if (den < 0) [num, den] = [-num, -den];
  const d = gcd(num, den) || 1;
  return { syms: [...syms].sort(), num: num / d, den: den / d };
}

const key = (t: Term) => t.syms.join("*");

/** Sums terms with equal symbols, drops zeros, sorts. */
function normalize(terms: readonly Term[]): Poly {
  const byKey = new Map<string, Term>();
  for (const t of terms) {
    const k = key(t);
    const prev = byKey.get(k);
    byKey.set(k, prev ? term(t.syms, prev.num * t.den + t.num * prev.den, prev.den * t.den) : t);
  }
  return [...byKey.values()].filter((t) => t.num !== 0).sort((a, b) => {
    if (a.syms.length !== b.syms.length) return b.syms.length - a.syms.length;
    const ka = key(a), kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

function add(a: Poly, b: Poly): Poly {
  return normalize([...a, ...b]);
}

function scale(a: Poly, num: number, den = 1): Poly {
  return normalize(a.map((t) => term(t.syms, t.num * num, t.den * den)));
}

function mul(a: Poly, b: Poly): Poly {
  const out: Term[] = [];
  for (const x of a) for (const y of b) out.push(term([...x.syms, ...y.syms], x.num * y.num, x.den * y.den));
  return normalize(out);
}

const constant = (n: number): Poly => normalize([term([], n)]);

// ---------------------------------------------------------------- parsing and formatting

const PARSE_CACHE = new Map<string, Poly>();

/** The polynomial of a dim (a string that is no expression is one opaque symbol). */
function polyOf(d: Dim): Poly {
  if (typeof d === "number") {
    if (!Number.isInteger(d)) throw new DimError(`dimension ${d} is not an integer`);
    return constant(d);
  }
  let p = PARSE_CACHE.get(d);
  if (!p) {
    p = parse(d) ?? [term([`{${d.replace(/[{}]/g, "")}}`], 1)];
    PARSE_CACHE.set(d, p);
  }
  return p;
}

/** Recursive-descent parse of `expr := term (("+" | "-") term)*`, or null when `s` is no expression. */
function parse(s: string): Poly | null {
  const tokens = s.match(/\{[^{}]*\}|[A-Za-z_][A-Za-z0-9_]*|\d+|[-+*/()]|\S/g);
  if (!tokens || tokens.join("") !== s.replace(/\s+/g, "")) return null;
  let i = 0;
  const peek = () => tokens[i];
  const factor = (): Poly | null => {
    const t = tokens[i++];
    if (t === undefined) return null;
    if (/^\d+$/.test(t)) return constant(Number(t));
    if (/^[A-Za-z_{]/.test(t)) return [term([t], 1)];
    if (t === "(") {
      const e = expr();
      if (e === null || tokens[i++] !== ")") return null;
      return e;
    }
    if (t === "-") {
      const f = factor();
      return f === null ? null : scale(f, -1);
    }
    return null;
  };
  const product = (): Poly | null => {
    let p = factor();
    while (p !== null && (peek() === "*" || peek() === "/")) {
      const op = tokens[i++];
      if (op === "*") {
        const f = factor();
        p = f === null ? null : mul(p, f);
      } else {
        const n = tokens[i++];
        if (n === undefined || !/^\d+$/.test(n) || Number(n) === 0) return null;
        p = scale(p, 1, Number(n));
      }
    }
    return p;
  };
  const expr = (): Poly | null => {
    let p = product();
    while (p !== null && (peek() === "+" || peek() === "-")) {
      const sign = tokens[i++] === "+" ? 1 : -1;
      const q = product();
      p = q === null ? null : add(p, scale(q, sign));
    }
    return p;
  };
  const p = expr();
  return p !== null && i === tokens.length ? p : null;
}

/** The canonical `Dim` of a polynomial: a number when constant. */
function format(p: Poly): Dim {
  if (p.length === 0) return 0;
  if (p.length === 1 && p[0].syms.length === 0) {
    const t = p[0];
    if (t.den !== 1) throw new DimError(`dimension ${t.num}/${t.den} is not an integer`);
    return t.num;
  }
  let out = "";
  p.forEach((t, i) => {
    const abs = Math.abs(t.num);
    const mono = t.syms.join("*");
    let s = mono === "" ? String(abs) : abs === 1 ? mono : `${abs}*${mono}`;
    if (t.den !== 1) s += `/${t.den}`;
    out += t.num < 0 ? (i === 0 ? `-${s}` : `-${s}`) : i === 0 ? s : `+${s}`;
  });
  return out;
}

// ---------------------------------------------------------------- public operations

/** The canonical form of a dim (numbers unchanged; `"seq + past"` becomes `"past+seq"`). */
export function canonicalDim(d: Dim): Dim {
  return format(polyOf(d));
}

/** `a + b + ...`, exact. */
export function addDims(...ds: readonly Dim[]): Dim {
  return format(ds.reduce<Poly>((p, d) => add(p, polyOf(d)), []));
}

/** `a - b`, exact (a negative result is the caller's to avoid: dims are sizes). */
export function subDims(a: Dim, b: Dim): Dim {
  return format(add(polyOf(a), scale(polyOf(b), -1)));
}

/** `a · b · ...`, exact. */
export function mulDims(...ds: readonly Dim[]): Dim {
  return format(ds.reduce<Poly>((p, d) => mul(p, polyOf(d)), constant(1)));
}

/**
 * `a / b` when it is a polynomial: by a constant or a product of symbols always (rational
 * coefficients: `rows / 2` is `rows/2`), by a sum when it divides `a` exactly (`(b·p + b·s) /
 * (p + s)` is `b`). Null when `b` does not divide `a` (`seq / batch`) or is 0.
 */
export function divDims(a: Dim, b: Dim): Dim | null {
  const pa = polyOf(a), pb = polyOf(b);
  if (pb.length === 0) return null;
  const lead = pb[0];
  /** The term t / lead, or null when lead's symbols are not all in t. */
  const divTerm = (t: Term): Term | null => {
    const rest = [...t.syms];
    for (const s of lead.syms) {
      const at = rest.indexOf(s);
      if (at < 0) return null;
      rest.splice(at, 1);
    }
    return term(rest, t.num * lead.den, t.den * lead.num);
  };
  // Polynomial long division by the leading term (exact division only).
  let rem: Poly = pa;
  const q: Term[] = [];
  for (let guard = 0; rem.length > 0; guard++) {
    if (guard > 1000) return null;
    const t = rem.find((x) => divTerm(x) !== null);
    if (!t) return null;
    const qt = divTerm(t)!;
    q.push(qt);
    rem = add(rem, scale(mul([qt], pb), -1));
  }
  try {
    return format(normalize(q));
  } catch {
    return null; // a non-integer constant quotient
  }
}

/** True when `a` and `b` are the same expression. */
export function sameDim(a: Dim, b: Dim): boolean {
  return canonicalDim(a) === canonicalDim(b);
}

/**
 * True when `d >= k` for every value of its symbols (each >= 0): every coefficient is >= 0 and the
 * constant term is >= k.
 */
export function dimAtLeast(d: Dim, k: number): boolean {
  const p = polyOf(d);
  if (p.some((t) => t.num < 0)) return false;
  const c = p.find((t) => t.syms.length === 0);
  return (c ? c.num / c.den : 0) >= k;
}

/** The symbols a dim is built from, sorted. */
export function dimSymbols(d: Dim): string[] {
  return [...new Set(polyOf(d).flatMap((t) => t.syms))].sort();
}

/**
 * `d` as `symbol + offset` when it has that form (`past+1` is `past` plus 1), else null: a value
 * with such a dim tells the size of `symbol` at run time.
 */
export function linearDim(d: Dim): { symbol: string; offset: number } | null {
  const p = polyOf(d);
  const lin = p.filter((t) => t.syms.length > 0);
  if (lin.length !== 1 || lin[0].syms.length !== 1 || lin[0].num !== 1 || lin[0].den !== 1) return null;
  const c = p.find((t) => t.syms.length === 0);
  if (c && c.den !== 1) return null;
  return { symbol: lin[0].syms[0], offset: c ? c.num : 0 };
}

/**
 * The terms of `d` for building it at run time: `value = Σ num · Π symbols / den` (division last,
 * exact when the dim is a size).
 */
export function dimTerms(d: Dim): { symbols: readonly string[]; num: number; den: number }[] {
  return polyOf(d).map((t) => ({ symbols: t.syms, num: t.num, den: t.den }));
}

/** The value of `d` for given symbol sizes (throws naming a symbol without a size). */
export function evalDim(d: Dim, sizes: Readonly<Record<string, number>>): number {
  let v = 0;
  for (const t of polyOf(d)) {
    let m = t.num / t.den;
    for (const s of t.syms) {
      if (!(s in sizes)) throw new DimError(`no size given for ${s} in ${canonicalDim(d)}`);
      m *= sizes[s];
    }
    v += m;
  }
  return v;
}
