// Seeded mutators: the same (seed, case) gives the same bytes on every machine. Byte-level ones for
// binary formats (aimed at the headers, where the parsers decide), structure-aware ones for JSON
// and for chat templates (values a hostile file would carry: huge counts, negative sizes, wrong
// types, deep nesting, unbounded loops).

/** A random integer in [0, n). */
const pick = (r, n) => r.below(n);
const choose = (r, list) => list[pick(r, list.length)];

const EXTREME_INTS = [0, -1, 1, 2, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -(2 ** 31)];

/** Mutates bytes; `hot` is where mutations mostly land (a format's header). */
export function mutateBytes(r, input, hot = input.length) {
  let b = Buffer.from(input);
  const rounds = 1 + pick(r, 4);
  for (let k = 0; k < rounds; k++) {
    const at = pick(r, 10) < 8 ? pick(r, Math.max(1, Math.min(hot, b.length))) : pick(r, Math.max(1, b.length));
    switch (pick(r, 8)) {
      case 0: b[at] ^= 1 << pick(r, 8); break;
      case 1: b[at] = pick(r, 256); break;
      case 2: { // an extreme little-endian integer over 4 or 8 bytes (counts, lengths, offsets)
        const v = choose(r, EXTREME_INTS), width = choose(r, [4, 8]);
        if (at + width <= b.length) width === 4 ? b.writeUInt32LE(v >>> 0, at) : b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), at);
        break;
      }
      case 3: b = b.subarray(0, pick(r, b.length + 1)); break; // truncated
      case 4: b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + pick(r, 16))]); break; // bytes removed
      case 5: b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + pick(r, 16) }, () => pick(r, 256))), b.subarray(at)]); break;
      case 6: b = Buffer.concat([b, b.subarray(0, pick(r, Math.min(b.length, 4096)))]); break; // trailing data
      default: { const len = 1 + pick(r, 64), from = pick(r, Math.max(1, b.length - len)); b.copy(b, at, from, from + len); }
    }
  }
  return b;
}

// Deep nesting is spliced in as text after JSON.stringify (which would recurse through it).
const deep = (depth) => `__DEEP_${depth}__`;
const spliceDeep = (json) => json.replace(/"__DEEP_(\d+)__"/g, (_, n) => '['.repeat(Number(n)) + ']'.repeat(Number(n)));

const EVIL_VALUES = () => [
  null, true, false, 0, -1, 1.5, -0.5, 1e308, -1e308, 2 ** 53 + 1, 2 ** 31, 1e9, 1e15, 'a', '', '\u0000', 'x'.repeat(1 << 16),
  [], {}, [1, 2, 3], { a: 1 }, '__proto__', 'NaN', '1e999',
];

/** Every [parent, key] of a parsed JSON value, to pick one to change. */
function slots(value, out = [], depth = 0) {
  if (depth > 12 || value === null || typeof value !== 'object') return out;
  for (const key of Object.keys(value)) {
    out.push([value, key]);
    slots(value[key], out, depth + 1);
  }
  return out;
}

/** Mutates a JSON text by its structure (a value replaced, removed, nested deep, a key doubled or renamed), or as bytes. */
export function mutateJson(r, text) {
  if (pick(r, 6) === 0) return mutateBytes(r, Buffer.from(text));
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return mutateBytes(r, Buffer.from(text));
  }
  const rounds = 1 + pick(r, 3);
  let raw = null;
  for (let k = 0; k < rounds; k++) {
    const all = slots(value);
    if (!all.length) break;
    const [parent, key] = choose(r, all);
    switch (pick(r, 7)) {
      case 0: delete parent[key]; break;
      case 1: parent[key] = deep(1 + pick(r, 200_000)); break;
      case 2: if (typeof parent[key] === 'number') parent[key] = choose(r, [parent[key] * 1e6, -parent[key], parent[key] + 1, parent[key] - 1, 0, 2 ** 40]); else parent[key] = choose(r, EVIL_VALUES()); break;
      case 3: if (!Array.isArray(parent)) { parent[`${key}_${pick(r, 9)}`] = parent[key]; } break;
      case 4: if (Array.isArray(parent[key])) parent[key] = Array.from({ length: 1 + pick(r, 100_000) }, (_, i) => parent[key][i % Math.max(1, parent[key].length)] ?? 0); else parent[key] = choose(r, EVIL_VALUES()); break;
      case 5: raw = { key, dup: true }; break; // a duplicated key, written below
      default: parent[key] = choose(r, EVIL_VALUES());
    }
  }
  let out;
  try {
    out = spliceDeep(JSON.stringify(value));
  } catch {
    return mutateBytes(r, Buffer.from(text)); // grown past what a string holds: mutate the bytes instead
  }
  if (out.length > 16 << 20) return mutateBytes(r, Buffer.from(text));
  if (raw && out.startsWith('{') && out.length > 2) out = `{${JSON.stringify(raw.key)}:0,` + out.slice(1); // duplicate key first
  if (pick(r, 10) === 0) out = '\uFEFF' + out;
  return Buffer.from(out);
}

const TEMPLATE_SNIPPETS = [
  '{% for i in range(1000000000) %}x{% endfor %}',
  '{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}',
  '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}',
  '{{ "x" * 1000000000 }}',
  '{% set s = namespace(v="a") %}{% for i in range(64) %}{% set s.v = s.v + s.v %}{% endfor %}{{ s.v }}',
  '{{ messages[0]["content"] * 100000000 }}',
  '{% for m in messages %}{{ m.content',
  '{{ raise_exception("boom") }}',
  '{% if %}',
  '{{ ((((((((((((((((((((1)))))))))))))))))))) }}',
  '{{ undefined_function() }}',
  '{{ messages.__class__ }}',
  '{% for i in range(-1, 1000000000000) %}{% endfor %}',
  '{{ "%s" % messages }}',
];

/** Mutates a chat template: a hostile snippet spliced in, or bytes. */
export function mutateTemplate(r, text) {
  if (pick(r, 5) === 0) return mutateBytes(r, Buffer.from(text));
  const at = pick(r, text.length + 1);
  return Buffer.from(text.slice(0, at) + choose(r, TEMPLATE_SNIPPETS) + text.slice(at));
}

/** Mutates a text data file (JSONL, CSV) by lines: a line changed as JSON or as bytes, duplicated or cut. */
export function mutateLines(r, text) {
  const lines = text.split('\n');
  const i = pick(r, lines.length);
  switch (pick(r, 5)) {
    case 0: lines[i] = mutateJson(r, lines[i] || '{}').toString('utf8'); break;
    case 1: lines[i] = mutateBytes(r, Buffer.from(lines[i] ?? '')).toString('latin1'); break;
    case 2: lines.splice(i, 0, ...Array.from({ length: 1 + pick(r, 1000) }, () => lines[i] ?? '')); break;
    case 3: lines[i] = choose(r, ['"', '"unterminated', '__proto__,constructor', '\u0000\u0000', 'a,'.repeat(10000), '{"text": "' + 'w'.repeat(200_000) + '"}']); break;
    default: return mutateBytes(r, Buffer.from(text));
  }
  return Buffer.from(lines.join('\n'));
}
