// Cleaning before training: personal data redaction (emails, phone numbers, payment card
// numbers) and a stable fingerprint for dropping duplicates.
//
// Phone numbers are found by libphonenumber-js (Google's libphonenumber metadata: every region's
// formats, full-width digits), as possible numbers of their region, with `region` for numbers
// written without a country code; vanity numbers (1-800-FLOWERS) by a pattern of our own. Card
// numbers must pass the Luhn check and start as card numbers do (2-6). Emails: plain, quoted and
// internationalized addresses, localhost and IP literals, and the "(at)" / "at ... dot" spellings.
// What is caught per kind on a labelled sample is measured by test/data.test.ts; README says what
// redaction does not promise.
import { findNumbers, type CountryCode } from 'libphonenumber-js/max';

const L = '\\p{L}\\p{N}', TLD = '(?:com|org|net|edu|gov|mil|int|info|biz|io|co|me|uk|de|fr|es|it|nl|be|ch|at|se|no|dk|fi|pl|ru|cn|jp|kr|in|br|au|ca|us|eu)';
const EMAILS = [
  new RegExp(`"[^"\\n]{1,64}"@(?:[${L}-]+\\.)+\\p{L}{2,}`, 'gu'), // quoted local part
  new RegExp(`[${L}._%+-]+@(?:(?:[${L}-]+\\.)+\\p{L}{2,}|localhost\\b|\\[(?:\\d{1,3}\\.){3}\\d{1,3}\\])`, 'gu'),
  // john (at) example (dot) com, jane [at] example [dot] org, john at example dot com
  new RegExp(`[${L}._%+-]+\\s*[([]\\s*at\\s*[)\\]]\\s*[${L}-]+(?:\\s*[([]\\s*dot\\s*[)\\]]\\s*[${L}-]+)+`, 'giu'),
  new RegExp(`(?<![${L}])[${L}._%+-]+\\s+at\\s+[${L}-]+(?:\\s+dot\\s+[${L}-]+)*\\s+dot\\s+${TLD}(?![${L}])`, 'giu'),
];
// 13-19 digits, in groups of 3 or more split by one kind of separator (space, dash, dot, underscore).
const CARD = /(?<![\d.,])[2-6]\d{2,}(?:([ ._-])\d{3,}(?:\1\d{3,})*)?(?![\d]|[.,]\d)/g;
// 1-800-FLOWERS: a toll-free prefix and letters.
const VANITY = /\b1[-. ]?8[0-8]{2}[-. ]?[A-Z0-9]{0,3}[A-Z][A-Z0-9-]{2,9}\b/g;

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

export interface RedactionCounts {
  emails: number;
  phones: number;
  cards: number;
}

/**
 * Replaces personal data with [EMAIL], [CARD] and [PHONE], counting each kind. `region` (ISO
 * 3166 alpha-2, default US) reads phone numbers written without a country code.
 */
export function redact(text: string, counts: RedactionCounts = { emails: 0, phones: 0, cards: 0 }, region = 'US'): string {
  let out = text;
  for (const re of EMAILS) out = out.replace(re, () => (counts.emails++, '[EMAIL]'));
  out = out.replace(CARD, (m) => {
    const digits = m.replace(/\D/g, '');
    if (digits.length < 13 || digits.length > 19 || !luhn(digits)) return m;
    counts.cards++;
    return '[CARD]';
  });
  out = out.replace(VANITY, () => (counts.phones++, '[PHONE]'));
  // Found numbers replaced from the end, so earlier offsets stay right.
  // leniency POSSIBLE: numbers of a possible length for their region (VALID, the default, drops
  // unassigned ranges such as 555 ones). The option works but is missing from the typings.
  const options = { defaultCountry: region as CountryCode, leniency: 'POSSIBLE', v2: true } as unknown as { defaultCountry: CountryCode; v2: true };
  // A phone number has 7 digits or more: texts with fewer skip the (slower) search.
  if ((out.match(/[\d\uFF10-\uFF19]/g)?.length ?? 0) < 7) return out;
  const found = findNumbers(out, options);
  for (let i = found.length - 1; i >= 0; i--) {
    const f = found[i]!;
    const span = out.slice(f.startsAt, f.endsAt);
    if (/^\d{4}-\d{2}-\d{2}$/.test(span)) continue; // an ISO date
    out = out.slice(0, f.startsAt) + '[PHONE]' + out.slice(f.endsAt);
    counts.phones++;
  }
  return out;
}

/** Two independent 32-bit FNV-1a hashes of the text's UTF-16 units, as one hex key (duplicate detection without keeping the text). */
export function fingerprint(text: string): string {
  let a = 0x811c9dc5, b = 0x9747b28c;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0') + text.length.toString(16);
}
