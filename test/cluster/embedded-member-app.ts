/**
 * A cluster member embedded in an application (start(), the node on its own thread as by
 * default) for TestCluster (`start(id, { app })`): it loads the node's TOML file (argv[2]) as
 * `hiqlite serve` does and prints READY once it is a member. Unlike `serve`, it keeps running when
 * its node stops serving (an application goes on after onFatal): it prints `FATAL <message>`,
 * and its API port stays up. SIGTERM shuts it down.
 */
import { onShutdownSignal, start } from '../../src/index.js';
import { loadTomlConfig } from '../../src/node/config/config.js';

const file = process.argv[2] as string;
const db = await start(loadTomlConfig(file, process.env), {
  onFatal: (e) => process.stdout.write(`FATAL ${e.message}\n`),
});
process.stdout.write(`READY node ${db.nodeId}\n`);
onShutdownSignal(async () => {
  await db.shutdown();
});
