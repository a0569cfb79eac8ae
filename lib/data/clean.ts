// Cleaning before training: personal data redaction (emails, phone numbers, payment card
// numbers) and a stable fingerprint for dropping duplicates. Redaction is deliberately
// conservative: a card number must pass the Luhn check, a phone number needs 7+ digits.

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
// 13-19 digits, optionally grouped by spaces or dashes.
const CARD = /\b\d(?:[ -]?\d){12,18}\b/g;
// International or national formats: +44 20 7946 0958, (555) 123-4567, 555.123.4567.
// A phone number has 7 to 15 digits (E.164).
const PHONE = /(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}\b/g;

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

/** Replaces personal data with [EMAIL], [CARD] and [PHONE], counting each kind. */
export function redact(text: string, counts: RedactionCounts = { emails: 0, phones: 0, cards: 0 }): string {
  let out = text.replace(EMAIL, () => (counts.emails++, '[EMAIL]'));
  out = out.replace(CARD, (m) => {
    const digits = m.replace(/\D/g, '');
    if (!luhn(digits)) return m;
    counts.cards++;
    return '[CARD]';
  });
  out = out.replace(PHONE, (m) => {
    const digits = m.replace(/\D/g, '').length;
    if (digits < 7 || digits > 15 || /^\d{4}-\d{2}-\d{2}$/.test(m)) return m; // E.164 has 7..15 digits; ISO dates
    counts.phones++;
    return '[PHONE]';
  });
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
