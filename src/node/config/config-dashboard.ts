/**
 * The dashboard settings of a node configuration: `password_dashboard` (an Argon2id PHC string,
 * or base64 of one as the Rust project writes it; `hiqlite hash-password` makes one) enables the
 * dashboard, and `insecure_cookie` drops the `__Host-` prefix and `Secure` flag of its session
 * cookie, for plain HTTP away from localhost. The hash's cost parameters are bounded
 * (src/dashboard/password.ts), so a config cannot make one login take minutes.
 *
 * No message quotes the hash: messages end up in logs.
 */
import { parsePhc } from '../../dashboard/password.js';
import { type ConfigProblems, describeValue } from './config-errors.js';

export interface ResolvedDashboardConfig {
  /** The PHC string; null: the dashboard is off (its routes do not exist). */
  readonly passwordHash: string | null;
  readonly insecureCookie: boolean;
}

export function checkDashboardConfig(
  input: Record<string, unknown>,
  problems: ConfigProblems,
): ResolvedDashboardConfig | null {
  const before = problems.count;
  let passwordHash: string | null = null;
  const p = input.passwordDashboard;
  if (p !== undefined && p !== '') {
    if (typeof p !== 'string') {
      problems.add('passwordDashboard', `must be a string, got ${describeValue(p)}`);
    } else {
      const parsed = parsePhc(p.trim());
      if (parsed.ok) passwordHash = p.trim();
      else problems.add('passwordDashboard', `${parsed.reason} (make one with: hiqlite hash-password)`);
    }
  }
  const c = input.insecureCookie;
  if (c !== undefined && typeof c !== 'boolean')
    problems.add('insecureCookie', `must be true or false, got ${describeValue(c)}`);
  if (problems.count > before) return null;
  return { passwordHash, insecureCookie: c === true };
}
