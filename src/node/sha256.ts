/**
 * SHA-256 of data read chunk by chunk (a snapshot file, a snapshot held in memory): the data is
 * never held whole. Snapshots carry one from the moment they are committed (src/node/seams.ts,
 * StoredSnapshot.sha256) to every restore and every transfer to a peer.
 */
import { createHash } from 'node:crypto';

/** 64 lowercase hex digits: how a checksum is written in a snapshot's metadata file. */
export const SHA256_HEX_RE = /^[0-9a-f]{64}$/;

/** The SHA-256 of everything `chunks` yields, as lowercase hex. */
export async function sha256Hex(chunks: AsyncIterable<Uint8Array>): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}
