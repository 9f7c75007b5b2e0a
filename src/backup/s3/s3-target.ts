/**
 * The S3 backup target: backups are objects `<prefix><name>` in one bucket. `put` streams through
 * a multipart upload (bounded memory: `partsInFlightMax × partSizeBytes`) that is aborted on any
 * failure, then checks with a HEAD that the object has every byte; `get` streams and resumes a
 * dropped download; retention (retention.ts) works on `list` and `delete`, and
 * `abortStaleUploads` removes the parts of uploads whose process died before it could abort them.
 */
import type { ResolvedS3Config } from '../../node/config/config-backup.js';
import { backupNotFound } from '../backup-errors.js';
import { parseBackupName } from '../names.js';
import type { BackupObject, BackupTarget, BackupTargetCallOptions } from '../target.js';
import { uploadStream } from './multipart-upload.js';
import { S3Client, type S3ClientHooks } from './s3-client.js';
import { S3Error } from './s3-errors.js';
import type { S3ClientOptions } from './s3-options.js';
import { checkKey } from './s3-transport.js';

export class S3Target implements BackupTarget {
  readonly kind = 's3';
  readonly description: string;

  /** `prefix` is prepended as is: `hiqlite/` puts backups in a "folder", `prod-` does not. */
  constructor(
    readonly client: S3Client,
    readonly prefix = '',
  ) {
    if (prefix !== '') checkKey('S3Target', prefix);
    this.description = `s3 ${client.options.bucket}/${prefix}`;
  }

  /** The target of a node's `s3_*` settings; `overrides` tune the client (limits, clock, fetch). */
  static fromConfig(
    config: ResolvedS3Config,
    o: { prefix?: string; overrides?: Partial<S3ClientOptions>; hooks?: S3ClientHooks } = {},
  ): S3Target {
    const client = new S3Client(
      {
        endpointUrl: config.url,
        bucket: config.bucket,
        region: config.region,
        pathStyle: config.pathStyle,
        accessKeyId: config.key,
        secretAccessKey: config.secret,
        requestTimeoutMs: config.requestTimeoutMs,
        retryDeadlineMs: config.retryDeadlineMs,
        ...o.overrides,
      },
      o.hooks,
    );
    return new S3Target(client, o.prefix ?? config.prefix);
  }

  async put(
    name: string,
    body: AsyncIterable<Uint8Array>,
    o: BackupTargetCallOptions = {},
  ): Promise<BackupObject> {
    checkName(name);
    const key = this.prefix + name;
    const call = o.signal === undefined ? {} : { signal: o.signal };
    const uploaded = await uploadStream(this.client, key, body, call);
    const stored = await this.client.headObject(key, call);
    if (stored === null || stored.sizeBytes !== uploaded.sizeBytes) {
      throw new S3Error({
        operation: 'PutObject',
        key,
        s3Code: 'InvalidResponse',
        httpStatus: null,
        detail: `uploaded ${uploaded.sizeBytes} bytes but the object ${stored === null ? 'is missing' : `has ${stored.sizeBytes}`}`,
        retryable: true,
        attempts: 1,
      });
    }
    return {
      name,
      bytes: stored.sizeBytes,
      modifiedMs: stored.lastModifiedMs ?? this.client.options.clock.wallMs(),
    };
  }

  async list(o: BackupTargetCallOptions = {}): Promise<BackupObject[]> {
    const out: BackupObject[] = [];
    for await (const obj of this.client.listObjects(
      this.prefix,
      o.signal === undefined ? {} : { signal: o.signal },
    )) {
      const name = obj.key.slice(this.prefix.length);
      if (parseBackupName(name) === null) continue;
      out.push({ name, bytes: obj.sizeBytes, modifiedMs: obj.lastModifiedMs ?? 0 });
    }
    return out;
  }

  async get(name: string, o: BackupTargetCallOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    checkName(name);
    try {
      const download = await this.client.getObject(
        this.prefix + name,
        o.signal === undefined ? {} : { signal: o.signal },
      );
      return download.body;
    } catch (e) {
      if (e instanceof S3Error && e.s3Code === 'NoSuchKey') {
        throw backupNotFound(`no backup '${name}' in ${this.description}`);
      }
      throw e;
    }
  }

  async delete(name: string, o: BackupTargetCallOptions = {}): Promise<void> {
    checkName(name);
    await this.client.deleteObject(this.prefix + name, o.signal === undefined ? {} : { signal: o.signal });
  }

  /**
   * Aborts multipart uploads of backups under the prefix started more than `olderThanMs` before
   * `nowMs` (a process killed mid-upload cannot abort its own); returns how many. Younger ones
   * may belong to an upload still running on another node.
   */
  async abortStaleUploads(
    nowMs: number,
    olderThanMs: number,
    o: BackupTargetCallOptions = {},
  ): Promise<number> {
    const call = o.signal === undefined ? {} : { signal: o.signal };
    const stale: Array<{ key: string; uploadId: string }> = [];
    for await (const u of this.client.listMultipartUploads(this.prefix, call)) {
      if (parseBackupName(u.key.slice(this.prefix.length)) === null) continue;
      if (u.initiatedMs !== null && nowMs - u.initiatedMs > olderThanMs) stale.push(u);
    }
    for (const u of stale) await this.client.abortMultipartUpload(u.key, u.uploadId, call);
    return stale.length;
  }
}

/** The S3 target of `openBackupTargets` (targets.ts). */
export function createS3Target(config: ResolvedS3Config): BackupTarget {
  return S3Target.fromConfig(config);
}

/** Only backup names: a name from a request can never address another object. */
function checkName(name: string): void {
  if (parseBackupName(name) === null) {
    throw backupNotFound(`'${name}' is not a backup name (backup_<time>_i<index>_n<node>.hqbak)`);
  }
}
