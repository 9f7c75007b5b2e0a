/** Child process of the crash tests: `node --import tsx test/storage/crash-child.ts <dir>`. */
import { runCrashChild } from './crash-workload.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: crash-child.ts <dir>');
await runCrashChild(dir);
