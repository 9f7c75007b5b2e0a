/**
 * `connect(options)`: the remote client (remote.ts), loaded when first asked for, so that an
 * application that only embeds a node does not load the remote client's modules.
 */
import type { HiqliteClient } from './client.js';
import type { ConnectOptions } from './remote.js';

/** A client of the cluster over the API port of its nodes (remote.ts, `connect`). */
export async function connect(options: ConnectOptions): Promise<HiqliteClient> {
  const remote = await import('./remote.js');
  return remote.connect(options);
}
