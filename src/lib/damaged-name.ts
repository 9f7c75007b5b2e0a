/**
 * The name a damaged file or directory is moved aside to: `<path>.damaged-<UTC time>`, the time
 * with `:` and `.` replaced so the name is valid on every file system
 * (`hiqlite.db.damaged-2026-12-06T02-30-00-123Z`). A node never reads such a name again: it is
 * kept for the operator (ERRORS.md, HQL_CORRUPTION).
 */
export function damagedName(path: string, at: Date): string {
  return `${path}.damaged-${at.toISOString().replace(/[:.]/g, '-')}`;
}
