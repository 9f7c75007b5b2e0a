/**
 * The few XML shapes S3 answers with, read by regular expressions: S3's answers are flat,
 * generated XML without CDATA or comments, and we need a handful of tags (docs/reference
 * dependency evaluation §7). Text is entity-decoded; a missing required tag is the caller's
 * `InvalidResponse`.
 */

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function decodeXmlText(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (whole, name: string) => {
    if (name.startsWith('#x')) return codePoint(Number.parseInt(name.slice(2), 16), whole);
    if (name.startsWith('#')) return codePoint(Number.parseInt(name.slice(1), 10), whole);
    return NAMED_ENTITIES[name] ?? whole;
  });
}

function codePoint(n: number, whole: string): string {
  return Number.isInteger(n) && n >= 0 && n <= 0x10ffff ? String.fromCodePoint(n) : whole;
}

export function encodeXmlText(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => `&${{ '&': 'amp', '<': 'lt', '>': 'gt', '"': 'quot', "'": 'apos' }[c]};`,
  );
}

/** The name of the document's root element (after an `<?xml …?>` declaration), or null. */
export function xmlRoot(xml: string): string | null {
  const m = /^\uFEFF?\s*(?:<\?xml[^>]*\?>\s*)?<([A-Za-z_][\w.-]*)[\s/>]/.exec(xml);
  return m === null ? null : (m[1] as string);
}

/** The decoded text of the first `<tag>` in `xml`, or null. */
export function xmlTag(xml: string, tag: string): string | null {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m === null ? null : decodeXmlText(m[1] as string);
}

/** The raw (still encoded) inner XML of every `<tag>…</tag>` block, in order. */
export function xmlBlocks(xml: string, tag: string): string[] {
  const out: string[] = [];
  for (const m of xml.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g'))) {
    out.push(m[1] as string);
  }
  return out;
}

export interface S3ErrorBody {
  code: string;
  message: string;
}

/** S3's `<Error><Code>…</Code><Message>…</Message></Error>`, or null when the body is not one. */
export function parseErrorBody(xml: string): S3ErrorBody | null {
  const [block] = xmlBlocks(xml, 'Error');
  if (block === undefined) return null;
  const code = xmlTag(block, 'Code');
  if (code === null) return null;
  return { code, message: xmlTag(block, 'Message') ?? '' };
}

export interface CompletedPart {
  partNumber: number;
  etag: string;
}

export function completeMultipartXml(parts: readonly CompletedPart[]): string {
  const body = parts
    .map((p) => `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${encodeXmlText(p.etag)}</ETag></Part>`)
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>${body}</CompleteMultipartUpload>`;
}
