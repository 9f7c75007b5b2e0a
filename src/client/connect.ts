/**
 * `connect(options)`: the remote client (remote.ts), loaded when first asked for, so that an
 * application that only embeds a node does not load the remote client's modules.
 */
import type { HiqliteClient } from './client.js';
import type { ConnectOptions } from './remote.js';

/**
 * Connects a remote client to a running cluster. Resolves once one node of `nodes` accepted
 * the connection and the secret; rejects at once on a wrong secret, and with every node's
 * reason (refused, timed out, TLS expected, …) when none can be reached.
 */
export async function connect(options: ConnectOptions): Promise<HiqliteClient> {
  const remote = await import('./remote.js');
  return remote.connect(options);
}
