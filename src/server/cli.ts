#!/usr/bin/env node
/**
 * The `hiqlite` command's entry (the commands: cli-main.ts). Loading the commands takes half a
 * second and more (SQLite's binding, the node runtime); a long-running command (`serve`, `dev`,
 * `proxy`) stopped by SIGTERM / SIGINT meanwhile ends with a message and exit code 0, as it does
 * once it has installed its own handlers, not silently with 143 (found by an outside probe:
 * `timeout -s TERM 0.5 hiqlite serve …`).
 */
import { holdStopSignals } from '../client/signals.js';

const LONG_RUNNING = new Set(['serve', 'dev', 'proxy']);
const command = process.argv[2];
if (command !== undefined && LONG_RUNNING.has(command)) {
  // Until the command has its own handlers (it releases these then, never before).
  holdStopSignals((signal) => {
    process.stderr.write(`hiqlite: received ${signal} while ${command} was still loading: stopping\n`);
    process.exit(0);
  });
}
const { main } = await import('./cli-main.js');
main();
