/**
 * `hiqlite remove-node <id> --config FILE`: removes a node that is gone for good from the running
 * cluster's membership (both Raft groups), through any node the configuration names. Without it a
 * node taken out of every `nodes` list stayed a voter for ever (found by an outside probe).
 */
import type { Command } from 'commander';
import { connect } from '../client/remote.js';
import { loadTomlConfig, resolveConfig } from '../node/config/config.js';

export function registerMembershipCommands(program: Command, nodeId: (v: string) => number): void {
  program
    .command('remove-node <id>')
    .description(
      'remove a node that is gone for good from the cluster (its vote stops counting); stop it first, then take it out of every nodes list',
    )
    .requiredOption('-c, --config <file>', 'TOML file of a node of the cluster ([hiqlite] table)')
    .action(async (id: string, o: { config: string }) => {
      const removed = nodeId(id);
      const cfg = resolveConfig(
        loadTomlConfig(o.config, process.env, { onWarning: (w) => process.stderr.write(`warning: ${w}\n`) }),
      );
      const client = await connect({
        nodes: cfg.nodes.map((n) => n.addrApi),
        secretApi: cfg.secretApi,
        ...(cfg.tls.api === null ? {} : { tls: true }),
      });
      try {
        const m = await client.removeNode(removed);
        const line = (name: string, v: { voters: number[]; learners: number[] }) =>
          `${name}: voters ${ids(v.voters)}${v.learners.length > 0 ? `; learners ${ids(v.learners)}` : ''}\n`;
        process.stdout.write(`node ${removed} is not a member any more\n`);
        if (m.sql !== null) process.stdout.write(line('sql group', m.sql));
        process.stdout.write(line('cache group', m.cache));
      } finally {
        await client.close();
      }
    });
}

/** Node ids in order, comma separated ('none' for none). */
function ids(list: readonly number[]): string {
  return list.length === 0 ? 'none' : [...list].sort((a, b) => a - b).join(', ');
}
