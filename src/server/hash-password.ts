/**
 * `hiqlite hash-password`: prints the Argon2id PHC string of a password, for `password_dashboard`.
 * The password comes from standard input when it is not a terminal (`echo -n … | hiqlite
 * hash-password`, one trailing newline dropped), otherwise from a prompt, asked twice, that does
 * not echo. It is never an argument: arguments show in `ps` and in shell history.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { hashPassword, PASSWORD_BYTES_MAX } from '../dashboard/password.js';
import { cliError } from './cli-error.js';

/** Shorter passwords are refused: the Rust project asks for at least 16 characters too. */
export const PASSWORD_CHARS_MIN = 16;

export async function runHashPassword(): Promise<void> {
  const password = process.stdin.isTTY ? await promptTwice() : await readStdin();
  const chars = [...password].length;
  if (chars < PASSWORD_CHARS_MIN)
    throw cliError(
      'HQL_INVALID_PARAMS',
      `the password must have at least ${PASSWORD_CHARS_MIN} characters, it has ${chars}`,
    );
  if (Buffer.byteLength(password) > PASSWORD_BYTES_MAX)
    throw cliError('HQL_INVALID_PARAMS', `the password must be at most ${PASSWORD_BYTES_MAX} bytes`);
  process.stdout.write(`${await hashPassword(password)}\n`);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > PASSWORD_BYTES_MAX + 2)
      throw cliError('HQL_INVALID_PARAMS', `the password must be at most ${PASSWORD_BYTES_MAX} bytes`);
    chunks.push(chunk);
  }
  // Not Buffer.toString: it turns every invalid byte into U+FFFD, so a Latin-1 password file
  // hashed a different password (one the browser never sends), and different byte strings the
  // same one.
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw cliError(
      'HQL_INVALID_PARAMS',
      'standard input is not UTF-8 text: the dashboard sends the password as UTF-8 (convert it, e.g. with iconv)',
    );
  }
  return text.replace(/\r?\n$/, '');
}

async function promptTwice(): Promise<string> {
  const first = await prompt('Dashboard password: ');
  const second = await prompt('Again: ');
  if (first !== second) throw cliError('HQL_INVALID_PARAMS', 'the two passwords differ');
  return first;
}

/** One line from the terminal without echo (the prompt itself goes to stderr). */
function prompt(question: string): Promise<string> {
  process.stderr.write(question);
  const silent = new Writable({ write: (_chunk, _enc, done) => done() });
  const rl = createInterface({ input: process.stdin, output: silent, terminal: true });
  return new Promise<string>((resolve, reject) => {
    rl.once('line', (line) => {
      rl.close();
      process.stderr.write('\n');
      resolve(line);
    });
    rl.once('SIGINT', () => {
      rl.close();
      process.stderr.write('\n');
      reject(new Error('cancelled'));
    });
  });
}
