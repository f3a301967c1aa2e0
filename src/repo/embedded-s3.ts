/**
 * Embedded local S3 server for `s3link demo` and the test suite, built on s3rver 3.7.1.
 *
 * s3rver has bugs that a FUSE client hits. This module works around each of them without editing
 * node_modules: a FilesystemStore subclass, one middleware in front of s3rver's router, and a
 * replacement list handler that is used only for servers started here (other s3rver instances in
 * the same process keep the original).
 *
 * 1. Continuation tokens. s3rver encrypts ListObjectsV2 tokens with DES, which OpenSSL 3 (Node 17+)
 *    refuses without --openssl-legacy-provider, so every truncated listing (over 1,000 keys) was a
 *    500. Our list handler (ListObjects V1 and V2) encodes tokens as plain base64url JSON (they only
 *    need to be opaque, not secret). While at it, it fixes what s3rver's handler got wrong too:
 *    MaxKeys and KeyCount count common prefixes as S3 does (s3rver counted objects only, so a page
 *    held any number of common prefixes), `encoding-type=url` is honoured, and keys come in S3's
 *    order (UTF-8 bytes). s3rver listed in directory order (`a/b/c` before `a/b` and `a-b`) and
 *    filtered pages with `key <= marker`, so paging silently lost keys.
 * 2. Long key components. s3rver stores key `a/b/c` as the file `a/b/c._S3rver_object` (plus
 *    `.md5` and `._S3rver_metadata.json`), so a directory component over 255 bytes fails with
 *    ENAMETOOLONG (500), and a last component over 233 bytes is worse: the error is emitted on an
 *    unwatched write stream and kills the whole server process. The same layout also broke on
 *    empty, `.` and `..` directory components (`a//b` and `a/b` shared a file; `../x` escaped the
 *    bucket).
 *    Every key that cannot be laid out that way is stored in a flat overflow directory per bucket,
 *    under the SHA-256 of the key, with the key itself in a sidecar file; listings merge the tree walk
 *    with the overflow keys in order. The router cannot match keys with empty components either, so
 *    the middleware rewrites the request path to carry the key as one encoded segment.
 * 3. Keys over 1,024 UTF-8 bytes got a 500 (or, with a long last component, the crash above). The
 *    middleware answers S3's 400 KeyTooLongError before anything touches the disk.
 * 4. Delimiter listings. s3rver's walk never entered a directory that lies below a would-be common
 *    prefix, so `a/b/` holding only `a/b/c/d` vanished from a listing of `a/` with delimiter `/`. Our
 *    walk enters it, finds the first key, reports the common prefix and skips the rest of it.
 *
 * Smaller fixes found on the way, also things a FUSE client hits:
 * - Writes are atomic (temp file + rename) and their errors are handled. s3rver wrote objects and
 *   metadata in place, so a concurrent GET could see half an object or a half-written metadata file
 *   (500), and any error on its write stream (disk full, a DELETE removing the now empty directory
 *   while a PUT into it starts) killed the whole process. An object's content and metadata also
 *   appear together (publish): a HEAD between their two renames saw new content with the old
 *   metadata, or none, which an exporter's copy then looked like it had lost; a GET whose
 *   content was opened just after a PUT's rename got the new bytes under the old ETag and length.
 * - CopyObject decoded `x-amz-copy-source` with decodeURI, which leaves `%2F`, `%2B`, `%23`, `%3F`,
 *   `%26`... encoded, so copying a key with `+ # ? & = , : ; @ $` (or a fully encoded source)
 *   failed with NoSuchKey or NoSuchBucket.
 * - DELETE also removes the object's tags (s3rver left them for the next object of that name).
 * - Multipart: uploadId and partNumber are validated (they are used in file paths); completing with
 *   a part that was never uploaded gives 400 InvalidPart (it killed s3rver's process).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import type { Dirent } from 'node:fs';
import type { Server } from 'node:http';
import { isIPv6 } from 'node:net';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';

// ---------------------------------------------------------------------------------------------
// The parts of s3rver's internals we use. s3rver ships no types, so these describe just what we
// touch; startEmbeddedS3 checks at run time that they are still there.

type Metadata = Record<string, string>;
type Content = Buffer | NodeJS.ReadableStream;

interface S3ObjectLike {
  bucket: string;
  key: string;
  content: Content | null;
  metadata: Metadata;
}

interface S3ObjectCtor {
  new (bucket: string, key: string, content: Content | null, metadata: Metadata): S3ObjectLike;
  ALLOWED_METADATA: string[];
}

type S3ErrorCtor = new (code: string, message: string, detail?: Record<string, unknown>) => Error;

interface FilesystemStoreBase {
  rootDirectory: string;
  getBucketPath(bucket: string): string;
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  getMetadata(bucket: string, key: string): Promise<Metadata>;
  getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3ObjectLike | null>;
}

type FilesystemStoreCtor = new (rootDirectory: string) => FilesystemStoreBase;

/** The slice of a Koa context that our middleware and list handler read and write. */
interface KoaContext {
  path: string;
  method: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
  params: { bucket: string; key?: string };
  store: FilesystemStoreBase;
  body: unknown;
}

type Next = () => Promise<void>;
type Middleware = ((ctx: KoaContext, next: Next) => Promise<void>) & { router?: unknown };

interface S3rverInstance {
  store: FilesystemStoreBase;
  context: { store: FilesystemStoreBase };
  middleware: Middleware[];
  httpServer?: Server;
  run(): Promise<{ address: string; port: number }>;
}

interface S3rverOptions {
  directory: string;
  address: string;
  port: number;
  silent: boolean;
  configureBuckets: Array<{ name: string; configs: string[] }>;
}

type S3rverCtor = new (options: S3rverOptions) => S3rverInstance;

// s3rver has no "exports" map, so its internal modules can be required by path. Plain require
// (not import) because there are no type declarations to import.
/* eslint-disable @typescript-eslint/no-require-imports */
const S3rver = require('s3rver') as S3rverCtor;
const FilesystemStore = require('s3rver/lib/stores/filesystem') as FilesystemStoreCtor;
const S3Object = require('s3rver/lib/models/object') as S3ObjectCtor;
const S3Error = require('s3rver/lib/models/error') as S3ErrorCtor;
const bucketController = require('s3rver/lib/controllers/bucket') as {
  getBucket: (ctx: KoaContext) => Promise<void>;
};
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account') as {
  DUMMY_ACCOUNT: { id: number; displayName: string };
};
/* eslint-enable @typescript-eslint/no-require-imports */

// ---------------------------------------------------------------------------------------------
// Keys and their place on disk

/** S3's limit on key length, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

const NAME_MAX = 255;
const SUFFIX_PREFIX = '._S3rver_';
const OBJECT_SUFFIX = `${SUFFIX_PREFIX}object`;
/** The longest suffix s3rver appends to a key's last component (`._S3rver_metadata.json`). */
const LONGEST_SUFFIX = `${SUFFIX_PREFIX}metadata.json`.length;
/** Per-bucket directories of ours. Their names contain `._S3rver_`, which no key directory may. */
const OVERFLOW_DIR = `${SUFFIX_PREFIX}s3link-keys`;
const TEMP_DIR = `${SUFFIX_PREFIX}s3link-tmp`;
const SIDECAR_SUFFIX = '.key';
/** Everything s3rver may store for one object. */
const OBJECT_RESOURCES = ['object', 'object.md5', 'metadata.json', 'tagging.xml'];

const byteLength = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * Orders strings as their UTF-8 bytes compare, the order of S3 listings, without encoding them.
 * UTF-16 code units order like code points except that surrogates (code points above U+FFFF) must
 * sort after U+E000..U+FFFF: shift those two ranges past each other.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

function utf8Rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** A directory component s3rver's layout can hold: a real, non-special file name. */
function isNativeDirectory(component: string): boolean {
  return (
    component !== '' &&
    component !== '.' &&
    component !== '..' &&
    byteLength(component) <= NAME_MAX &&
    !component.includes(SUFFIX_PREFIX) &&
    !component.includes('\0')
  );
}

/**
 * Whether s3rver's own layout (`dir/dir/last._S3rver_<resource>`) can store this key. The last
 * component may be empty, `.` or `..`: the suffix makes those ordinary file names.
 */
export function isNativeKey(key: string): boolean {
  const parts = key.split('/');
  const last = parts.pop() ?? '';
  if (byteLength(last) + LONGEST_SUFFIX > NAME_MAX || last.includes('\0')) return false;
  return parts.every(isNativeDirectory);
}

const keyHash = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code !== undefined && codes.includes(code);
}

async function unlinkIfExists(file: string): Promise<void> {
  await fsp.unlink(file).catch((err: unknown) => {
    if (!isErrno(err, 'ENOENT')) throw err;
  });
}

async function pathExists(file: string): Promise<boolean> {
  return fsp.access(file).then(
    () => true,
    () => false,
  );
}

async function readJsonIfExists(file: string): Promise<Metadata | undefined> {
  try {
    return JSON.parse(await fsp.readFile(file, 'utf8')) as Metadata;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// Listing

export interface ListOptions {
  prefix: string;
  delimiter: string;
  /** Return only entries after this key or common prefix (V1 marker, V2 start-after or token). */
  marker: string;
  maxKeys: number;
}

export interface ListPage {
  objects: Array<{ key: string; metadata: Metadata }>;
  commonPrefixes: string[];
  isTruncated: boolean;
  /** The last key or common prefix of a truncated page: where the next page starts. */
  nextMarker?: string;
}

/** Shared between the walk and its consumer: a common prefix whose remaining keys are not wanted. */
interface SkipState {
  prefix?: string;
}

/** The common prefix a key rolls up into, or undefined if it is listed as itself. */
function commonPrefixOf(key: string, prefix: string, delimiter: string): string | undefined {
  if (!delimiter) return undefined;
  const idx = key.indexOf(delimiter, prefix.length);
  return idx === -1 ? undefined : key.slice(0, idx + delimiter.length);
}

/** Merges two sorted key sequences (each key lives in exactly one of them). */
async function* mergeSorted(walked: AsyncIterable<string>, sorted: string[]): AsyncGenerator<string> {
  let i = 0;
  for await (const key of walked) {
    while (i < sorted.length && compareKeys(sorted[i], key) < 0) yield sorted[i++];
    yield key;
  }
  while (i < sorted.length) yield sorted[i++];
}

interface Child {
  /** A key (file) or a key prefix ending in `/` (directory). */
  name: string;
  isDir: boolean;
  path: string;
}

async function isDirectoryEntry(dir: string, entry: Dirent): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (entry.isFile()) return false;
  // Some file systems do not report the type in readdir.
  return (await fsp.stat(path.join(dir, entry.name)).catch(() => undefined))?.isDirectory() ?? false;
}

/**
 * A directory's objects and key subdirectories, sorted in key order. Sorting a file as its key
 * component and a directory as its component plus `/` makes a depth-first walk yield keys in order.
 */
async function readChildren(dir: string, keyPrefix: string): Promise<Child[]> {
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return []; // removed while we list: S3 would not care
    throw err;
  }
  const children: Child[] = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (await isDirectoryEntry(dir, entry)) {
      if (!entry.name.includes(SUFFIX_PREFIX)) {
        children.push({ name: `${keyPrefix}${entry.name}/`, isDir: true, path: full });
      }
    } else if (entry.name.endsWith(OBJECT_SUFFIX)) {
      children.push({ name: keyPrefix + entry.name.slice(0, -OBJECT_SUFFIX.length), isDir: false, path: full });
    }
  }
  return children.sort((a, b) => compareKeys(a.name, b.name));
}

/** Whether no key below directory `dir` (a key prefix ending in `/`) can be part of the listing. */
function canSkipDirectory(dir: string, opts: ListOptions, skip: SkipState): boolean {
  if (!dir.startsWith(opts.prefix) && !opts.prefix.startsWith(dir)) return true;
  if (opts.marker && compareKeys(dir, opts.marker) < 0 && !opts.marker.startsWith(dir)) return true;
  return skip.prefix !== undefined && dir.startsWith(skip.prefix);
}

/** Yields the natively stored keys under `dir` that start with the prefix, in key order. */
async function* walkTree(dir: string, keyPrefix: string, opts: ListOptions, skip: SkipState): AsyncGenerator<string> {
  for (const child of await readChildren(dir, keyPrefix)) {
    if (!child.isDir) {
      if (child.name.startsWith(opts.prefix)) yield child.name;
    } else if (!canSkipDirectory(child.name, opts, skip)) {
      yield* walkTree(child.path, child.name, opts, skip);
    }
  }
}

/** The deepest directory the listing can start in: the part of the prefix up to its last `/`. */
function walkStart(prefix: string): string {
  const dirs = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  return dirs && dirs.slice(0, -1).split('/').every(isNativeDirectory) ? dirs : '';
}

// ---------------------------------------------------------------------------------------------
// The store

/**
 * s3rver's FilesystemStore with long and odd keys moved to an overflow directory, atomic writes,
 * and a listing that is ordered, pages by keys and common prefixes, and finds deep common prefixes.
 */
export class EmbeddedStore extends FilesystemStore {
  /** Keys whose content and metadata are being put in place (publish). */
  private readonly publishing = new Map<string, Promise<void>>();
  /** Publishes started, of any key: a GET during which none started needs no second look. */
  private publishes = 0;

  private overflowPath(bucket: string): string {
    return path.join(this.getBucketPath(bucket), OVERFLOW_DIR);
  }

  private sidecarPath(bucket: string, key: string): string {
    return path.join(this.overflowPath(bucket), keyHash(key) + SIDECAR_SUFFIX);
  }

  override getResourcePath(bucket: string, key: string | undefined, resource: string): string {
    if (key === undefined || isNativeKey(key)) return super.getResourcePath(bucket, key, resource);
    return path.join(this.overflowPath(bucket), `${keyHash(key)}${SUFFIX_PREFIX}${resource}`);
  }

  /** Records an overflow key's name before its object exists, so a listing can name it. */
  private async rememberKey(bucket: string, key: string): Promise<void> {
    if (!isNativeKey(key)) await this.writeFileAtomic(bucket, this.sidecarPath(bucket, key), key);
  }

  // -- atomic writes ------------------------------------------------------------------------

  /** Buckets whose temp directory exists (saves a mkdir per write; see deleteBucket). */
  private readonly hasTempDir = new Set<string>();

  private async tempFile(bucket: string): Promise<string> {
    const dir = path.join(this.getBucketPath(bucket), TEMP_DIR);
    if (!this.hasTempDir.has(bucket)) {
      await fsp.mkdir(dir, { recursive: true });
      this.hasTempDir.add(bucket);
    }
    return path.join(dir, randomBytes(12).toString('hex'));
  }

  /**
   * Renames a finished temp file into place, making the parent directory when missing. A
   * concurrent DELETE may remove that (empty) directory between our mkdir and rename: retry.
   */
  private async renameInto(temp: string, target: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fsp.rename(temp, target);
      } catch (err) {
        if (!isErrno(err, 'ENOENT') || attempt >= 5 || !(await pathExists(temp))) {
          await unlinkIfExists(temp);
          throw err;
        }
      }
      await fsp.mkdir(path.dirname(target), { recursive: true });
    }
  }

  private async writeFileAtomic(bucket: string, target: string, data: string): Promise<void> {
    const temp = await this.tempFile(bucket);
    await fsp.writeFile(temp, data);
    await this.renameInto(temp, target);
  }

  /** Streams content into a temp file, returning its size and MD5; removes it on failure. */
  private async writeContent(bucket: string, content: Content | Readable): Promise<{ temp: string; size: number; md5: string }> {
    const temp = await this.tempFile(bucket);
    const hash = createHash('md5');
    let size = 0;
    const measure = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const source = Buffer.isBuffer(content) ? Readable.from([content]) : content;
    try {
      await pipeline(source, measure, createWriteStream(temp));
    } catch (err) {
      await unlinkIfExists(temp);
      throw err;
    }
    return { temp, size, md5: hash.digest('hex') };
  }

  // -- FilesystemStore overrides --------------------------------------------------------------

  /**
   * Puts an object's content and metadata in place as one step for readers: s3rver keeps them in
   * separate files, and a GET or HEAD between the two renames saw the new object with the old
   * metadata, or none (S3 never shows that). Readers of the key (getMetadata, which getObject
   * calls first) wait for it; writers of the key take turns. The content is streamed before.
   */
  private async publish(bucket: string, key: string, put: () => Promise<void>): Promise<void> {
    const id = `${bucket}/${key}`;
    this.publishes++;
    const done = (this.publishing.get(id) ?? Promise.resolve()).then(put);
    const settled = done.catch(() => undefined);
    this.publishing.set(id, settled);
    try {
      await done;
    } finally {
      if (this.publishing.get(id) === settled) this.publishing.delete(id);
    }
  }

  async getMetadata(bucket: string, key: string): Promise<Metadata> {
    await this.publishing.get(`${bucket}/${key}`);
    return super.getMetadata(bucket, key);
  }

  /**
   * s3rver reads the metadata, then opens the content: a publish between the two gave the new
   * bytes under the old ETag and length. Once open, the content is that file's whatever is renamed
   * over it. If any publish started meanwhile, the metadata read again (after any publish of the
   * key) must be the same version; if it is not, the object is opened again. (Reading it again
   * every time cost a quarter of the server's rate of small GETs.)
   */
  async getObject(bucket: string, key: string, options?: { start?: number; end?: number }): Promise<S3ObjectLike | null> {
    for (;;) {
      const before = this.publishes;
      const object = await super.getObject(bucket, key, options);
      if (object === null || object.content === null || this.publishes === before) return object;
      const now = await this.getMetadata(bucket, key).catch(() => undefined);
      if (now?.etag === object.metadata.etag) return object;
      (object.content as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
    }
  }

  async putMetadata(bucket: string, key: string, metadata: Metadata, md5?: string): Promise<void> {
    const kept: Metadata = {};
    for (const [name, value] of Object.entries(metadata)) {
      if (S3Object.ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-')) kept[name] = value;
    }
    if (md5) await this.writeFileAtomic(bucket, this.getResourcePath(bucket, key, 'object.md5'), md5);
    await this.writeFileAtomic(bucket, this.getResourcePath(bucket, key, 'metadata.json'), JSON.stringify(kept, null, 2));
  }

  async putObject(object: S3ObjectLike): Promise<{ size: number; md5: string }> {
    if (!object.content) throw new S3Error('IncompleteBody', 'The request body is missing');
    await this.rememberKey(object.bucket, object.key);
    const { temp, size, md5 } = await this.writeContent(object.bucket, object.content);
    await this.publish(object.bucket, object.key, async () => {
      await this.renameInto(temp, this.getResourcePath(object.bucket, object.key, 'object'));
      await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    });
    return { size, md5 };
  }

  async copyObject(
    srcBucket: string,
    srcKey: string,
    destBucket: string,
    destKey: string,
    replacementMetadata: Metadata | null,
  ): Promise<Metadata> {
    const srcObject = this.getResourcePath(srcBucket, srcKey, 'object');
    const destObject = this.getResourcePath(destBucket, destKey, 'object');
    const srcMetadata = await this.getMetadata(srcBucket, srcKey); // also makes sure the .md5 exists
    const md5 = JSON.parse(srcMetadata.etag) as string;
    const stored = replacementMetadata ?? (await readJsonIfExists(this.getResourcePath(srcBucket, srcKey, 'metadata.json'))) ?? {};
    let temp: string | undefined;
    if (srcObject !== destObject) {
      await this.rememberKey(destBucket, destKey);
      temp = await this.tempFile(destBucket);
      await fsp.copyFile(srcObject, temp);
    }
    await this.publish(destBucket, destKey, async () => {
      if (temp !== undefined) await this.renameInto(temp, destObject);
      await this.putMetadata(destBucket, destKey, stored, md5);
    });
    return this.getMetadata(destBucket, destKey);
  }

  async deleteBucket(bucket: string): Promise<void> {
    this.hasTempDir.delete(bucket);
    await fsp.rm(this.getBucketPath(bucket), { recursive: true, force: true });
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await Promise.all(OBJECT_RESOURCES.map((r) => unlinkIfExists(this.getResourcePath(bucket, key, r))));
    if (isNativeKey(key)) await this.removeEmptyParents(bucket, key);
    else await unlinkIfExists(this.sidecarPath(bucket, key));
  }

  /** Removes the key's now empty directories, bottom up; stops at the first one still in use. */
  private async removeEmptyParents(bucket: string, key: string): Promise<void> {
    const dirs = key.split('/').slice(0, -1);
    for (let n = dirs.length; n > 0; n--) {
      try {
        await fsp.rmdir(path.join(this.getBucketPath(bucket), ...dirs.slice(0, n)));
      } catch (err) {
        if (isErrno(err, 'ENOTEMPTY', 'EEXIST', 'ENOENT')) return;
        throw err;
      }
    }
  }

  private uploadPath(bucket: string, uploadId: string): string {
    // uploadId comes from the query string and becomes a path: accept only what we hand out.
    if (!/^[0-9a-f]{32}$/.test(uploadId)) {
      throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
    }
    return path.join(this.getResourcePath(bucket, undefined, 'uploads'), uploadId);
  }

  async putPart(bucket: string, uploadId: string, partNumber: string | number, content: Readable): Promise<{ size: number; md5: string }> {
    const part = Number(partNumber);
    if (!Number.isInteger(part) || part < 1 || part > 10000) {
      throw new S3Error('InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive', {
        ArgumentName: 'partNumber',
        ArgumentValue: String(partNumber),
      });
    }
    const partPath = path.join(this.uploadPath(bucket, uploadId), String(part));
    const { temp, size, md5 } = await this.writeContent(bucket, content);
    await this.renameInto(temp, partPath);
    await this.writeFileAtomic(bucket, `${partPath}.md5`, md5);
    return { size, md5 };
  }

  async putObjectMultipart(
    bucket: string,
    uploadId: string,
    parts: Array<{ number: number; etag: string }>,
  ): Promise<{ size: number; md5: string }> {
    const uploadDir = this.uploadPath(bucket, uploadId);
    const key = await fsp.readFile(path.join(uploadDir, 'key'), 'utf8').catch((err: unknown) => {
      if (isErrno(err, 'ENOENT')) throw new S3Error('NoSuchUpload', 'The specified upload does not exist.', { UploadId: uploadId });
      throw err;
    });
    const metadata = JSON.parse(await fsp.readFile(path.join(uploadDir, 'metadata'), 'utf8')) as Metadata;
    const ordered = [...parts].sort((a, b) => a.number - b.number);
    await Promise.all(ordered.map((p) => this.checkPart(uploadDir, p)));
    const files = ordered.map((p) => path.join(uploadDir, String(p.number)));
    const result = await this.putObject(new S3Object(bucket, key, Readable.from(concatFiles(files)), metadata));
    await fsp.rm(uploadDir, { recursive: true, force: true });
    return result;
  }

  /** A completed part must exist with the ETag the client names (S3's InvalidPart otherwise). */
  private async checkPart(uploadDir: string, part: { number: number; etag: string }): Promise<void> {
    const md5 = await fsp.readFile(path.join(uploadDir, `${part.number}.md5`), 'utf8').catch(() => undefined);
    if (md5 === undefined || md5 !== part.etag) {
      const message =
        'One or more of the specified parts could not be found. The part might not have been uploaded, ' +
        "or the specified entity tag might not have matched the part's entity tag.";
      throw new S3Error('InvalidPart', message, { PartNumber: part.number, ETag: part.etag });
    }
  }

  // -- listing ------------------------------------------------------------------------------

  /** The overflow keys under a prefix, sorted. Overflow keys are rare: read them all. */
  private async overflowKeys(bucket: string, prefix: string): Promise<string[]> {
    let names: string[];
    try {
      names = await fsp.readdir(this.overflowPath(bucket));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const sidecars = names.filter((n) => n.endsWith(SIDECAR_SUFFIX));
    const keys = await Promise.all(
      sidecars.map((n) => fsp.readFile(path.join(this.overflowPath(bucket), n), 'utf8').catch(() => undefined)),
    );
    return keys.filter((k): k is string => k !== undefined && k.startsWith(prefix)).sort(compareKeys);
  }

  /** Every key under the prefix, in key order; the walk skips subtrees the options rule out. */
  private async sortedKeys(bucket: string, opts: ListOptions, skip: SkipState): Promise<AsyncGenerator<string>> {
    const start = walkStart(opts.prefix);
    const dir = path.join(this.getBucketPath(bucket), ...start.split('/').filter(Boolean));
    return mergeSorted(walkTree(dir, start, opts, skip), await this.overflowKeys(bucket, opts.prefix));
  }

  /** One page of a listing, S3's way: entries after the marker, keys and common prefixes count. */
  async listPage(bucket: string, opts: ListOptions): Promise<ListPage> {
    const skip: SkipState = {};
    const entries: Array<{ key?: string; prefix?: string }> = [];
    let isTruncated = false;
    let lastPrefix: string | undefined;
    for await (const key of await this.sortedKeys(bucket, opts, skip)) {
      if (compareKeys(key, opts.marker) <= 0) continue;
      const common = commonPrefixOf(key, opts.prefix, opts.delimiter);
      if (common !== undefined) {
        skip.prefix = common; // the rest of this common prefix adds nothing
        if (common === lastPrefix || common === opts.marker) continue;
      }
      if (entries.length >= opts.maxKeys) {
        isTruncated = true;
        break;
      }
      entries.push(common !== undefined ? { prefix: common } : { key });
      if (common !== undefined) lastPrefix = common;
    }
    const last = entries[entries.length - 1];
    return {
      objects: await this.withMetadata(bucket, entries.flatMap((e) => (e.key !== undefined ? [e.key] : []))),
      commonPrefixes: entries.flatMap((e) => (e.prefix !== undefined ? [e.prefix] : [])),
      isTruncated,
      nextMarker: isTruncated ? (last?.key ?? last?.prefix) : undefined,
    };
  }

  /** Metadata for listed keys; a key deleted since the walk saw it is left out. */
  private async withMetadata(bucket: string, keys: string[]): Promise<ListPage['objects']> {
    const found = await Promise.all(
      keys.map((key) =>
        this.getMetadata(bucket, key).then(
          (metadata) => ({ key, metadata }),
          (err: unknown) => {
            if (isErrno(err, 'ENOENT')) return undefined;
            throw err;
          },
        ),
      ),
    );
    return found.filter((o): o is { key: string; metadata: Metadata } => o !== undefined);
  }

  /** s3rver's interface, still used by DELETE Bucket to see whether the bucket is empty. */
  async listObjects(
    bucket: string,
    options: { delimiter?: string; startAfter?: string; prefix?: string; maxKeys?: number },
  ): Promise<{ objects: S3ObjectLike[]; commonPrefixes: string[]; isTruncated: boolean }> {
    const page = await this.listPage(bucket, {
      prefix: options.prefix ?? '',
      delimiter: options.delimiter ?? '',
      marker: options.startAfter ?? '',
      maxKeys: options.maxKeys ?? Infinity,
    });
    return {
      objects: page.objects.map((o) => new S3Object(bucket, o.key, null, o.metadata)),
      commonPrefixes: page.commonPrefixes,
      isTruncated: page.isTruncated,
    };
  }
}

/** The contents of several files, one after the other; a read error fails the PUT, not the process. */
async function* concatFiles(files: string[]): AsyncGenerator<Buffer> {
  for (const file of files) {
    for await (const chunk of createReadStream(file)) yield chunk as Buffer;
  }
}

// ---------------------------------------------------------------------------------------------
// ListObjects (V1 and V2) handler, replacing s3rver's for our servers

interface ListRequest extends ListOptions {
  v2: boolean;
  maxKeysEcho: string;
  startAfter?: string;
  continuationToken?: string;
  fetchOwner: boolean;
  urlEncoded: boolean;
}

function queryParam(ctx: KoaContext, name: string): string | undefined {
  const value = ctx.query[name];
  return Array.isArray(value) ? value[0] : value;
}

function invalidArgument(message: string, name: string, value?: string): Error {
  return new S3Error('InvalidArgument', message, { ArgumentName: name, ArgumentValue: value });
}

/** Continuation tokens only need to be opaque to clients: base64url JSON, bound to the bucket. */
export function encodeContinuationToken(bucket: string, marker: string): string {
  return Buffer.from(JSON.stringify({ b: bucket, m: marker }), 'utf8').toString('base64url');
}

export function decodeContinuationToken(bucket: string, token: string): string {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { b?: unknown; m?: unknown };
    if (parsed.b === bucket && typeof parsed.m === 'string') return parsed.m;
  } catch {
    // fall through: not one of ours
  }
  throw invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
}

function parseMaxKeys(raw: string | undefined): number {
  if (raw === undefined) return 1000;
  if (!/^-?\d+$/.test(raw)) throw invalidArgument('Provided max-keys not an integer or within integer range', 'max-keys', raw);
  const n = Number(raw);
  if (n < 0 || n > 2147483647) throw invalidArgument('Argument maxKeys must be an integer between 0 and 2147483647', 'maxKeys', raw);
  return Math.min(1000, n); // S3 never returns more than 1,000 per page
}

/** V2 starts after the token's marker or start-after; V1 after its marker. Mixing is an error. */
function parseStart(ctx: KoaContext, v2: boolean): Pick<ListRequest, 'marker' | 'startAfter' | 'continuationToken'> {
  if (v2) {
    if ('marker' in ctx.query) throw invalidArgument('Marker unsupported with REST.GET.BUCKET in list-type=2', 'marker');
    const continuationToken = queryParam(ctx, 'continuation-token') || undefined;
    const startAfter = queryParam(ctx, 'start-after');
    const marker = continuationToken ? decodeContinuationToken(ctx.params.bucket, continuationToken) : startAfter;
    return { marker: marker ?? '', startAfter, continuationToken };
  }
  if ('continuation-token' in ctx.query) {
    throw invalidArgument('continuation-token only supported in REST.GET.BUCKET with list-type=2', 'continuation-token');
  }
  if ('start-after' in ctx.query) throw invalidArgument('startAfter only supported in REST.GET.BUCKET with list-type=2', 'start-after');
  return { marker: queryParam(ctx, 'marker') ?? '' };
}

function parseListRequest(ctx: KoaContext): ListRequest {
  const v2 = queryParam(ctx, 'list-type') === '2';
  const encoding = queryParam(ctx, 'encoding-type');
  if (encoding !== undefined && encoding !== 'url') {
    throw invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encoding);
  }
  const maxKeysRaw = queryParam(ctx, 'max-keys');
  return {
    v2,
    prefix: queryParam(ctx, 'prefix') ?? '',
    delimiter: queryParam(ctx, 'delimiter') ?? '',
    maxKeys: parseMaxKeys(maxKeysRaw),
    maxKeysEcho: maxKeysRaw ?? '1000', // S3 echoes the requested value, even above 1,000
    fetchOwner: v2 ? queryParam(ctx, 'fetch-owner') === 'true' : true,
    urlEncoded: encoding === 'url',
    ...parseStart(ctx, v2),
  };
}

/** The ListBucketResult document, as a plain object for s3rver's XML encoder (undefined = omitted). */
function listResult(bucket: string, req: ListRequest, page: ListPage): Record<string, unknown> {
  // With encoding-type=url, S3 URL-encodes every key-like value; keeping `/` readable is allowed.
  const enc = (s: string): string => (req.urlEncoded ? encodeURIComponent(s).replace(/%2F/g, '/') : s);
  const nextMarker = page.isTruncated ? page.nextMarker : undefined;
  const paging = req.v2
    ? {
        StartAfter: req.startAfter !== undefined ? enc(req.startAfter) : undefined,
        ContinuationToken: req.continuationToken,
        NextContinuationToken: nextMarker !== undefined ? encodeContinuationToken(bucket, nextMarker) : undefined,
        KeyCount: page.objects.length + page.commonPrefixes.length,
      }
    : {
        Marker: enc(req.marker),
        // S3 sends NextMarker only with a delimiter; otherwise clients continue from the last key.
        NextMarker: req.delimiter && nextMarker !== undefined ? enc(nextMarker) : undefined,
      };
  return {
    '@': { xmlns: 'http://s3.amazonaws.com/doc/2006-03-01/' },
    Name: bucket,
    Prefix: enc(req.prefix),
    ...paging,
    MaxKeys: req.maxKeysEcho,
    Delimiter: req.delimiter ? enc(req.delimiter) : undefined,
    EncodingType: req.urlEncoded ? 'url' : undefined,
    IsTruncated: page.isTruncated,
    Contents: page.objects.map(({ key, metadata }) => ({
      Key: enc(key),
      LastModified: new Date(metadata['last-modified']).toISOString(),
      ETag: metadata.etag,
      Size: Number(metadata['content-length']),
      Owner: req.fetchOwner ? { ID: DUMMY_ACCOUNT.id, DisplayName: DUMMY_ACCOUNT.displayName } : undefined,
      StorageClass: 'STANDARD',
    })),
    CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
  };
}

const EMPTY_PAGE: ListPage = { objects: [], commonPrefixes: [], isTruncated: false };

async function listObjectsHandler(ctx: KoaContext, store: EmbeddedStore): Promise<void> {
  const req = parseListRequest(ctx);
  const page = req.maxKeys === 0 ? EMPTY_PAGE : await store.listPage(ctx.params.bucket, req);
  ctx.body = { ListBucketResult: listResult(ctx.params.bucket, req, page) };
}

let listHandlerInstalled = false;

/**
 * Routes GET Bucket to our handler for servers using an EmbeddedStore. s3rver's router looks the
 * controller function up on the module's exports at each request, so replacing the export works
 * and keeps s3rver's own routing, authentication and bucket-exists check in front of it.
 */
function installListHandler(): void {
  if (listHandlerInstalled) return;
  const original = bucketController.getBucket;
  if (typeof original !== 'function') throw new Error('s3rver internals changed: controllers/bucket.getBucket is missing');
  bucketController.getBucket = (ctx) => (ctx.store instanceof EmbeddedStore ? listObjectsHandler(ctx, ctx.store) : original(ctx));
  listHandlerInstalled = true;
}

// ---------------------------------------------------------------------------------------------
// Middleware in front of s3rver's router

/** The bucket and raw (still URL-encoded) key of a path-style object request. */
function splitObjectPath(urlPath: string): { bucket: string; rawKey: string } | undefined {
  const match = /^\/([^/]+)\/(.+)$/s.exec(urlPath);
  return match ? { bucket: match[1], rawKey: match[2] } : undefined;
}

function tryDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/**
 * S3 wants x-amz-copy-source URL-encoded; s3rver decodes it with decodeURI, which leaves reserved
 * characters (`%2B`, `%23`, `%3F`...) encoded. Re-encode it so that decodeURI yields the real key.
 */
function normalizeCopySource(ctx: KoaContext): void {
  const raw = ctx.headers['x-amz-copy-source'];
  if (typeof raw !== 'string') return;
  const source = tryDecode(raw.split('?')[0]); // `?versionId=` is not supported by s3rver anyway
  if (source !== undefined) ctx.headers['x-amz-copy-source'] = encodeURI(source);
}

/**
 * Rejects keys over S3's limit with S3's error and hands the router the key as one encoded path
 * segment, so that keys with empty components (`a//b`, `/x`) match the `/:bucket/:key+` route.
 */
function objectKeyMiddleware(): Middleware {
  return async function s3linkObjectKey(ctx, next) {
    const parts = splitObjectPath(ctx.path);
    const key = parts && tryDecode(parts.rawKey);
    if (parts && key !== undefined) {
      const size = byteLength(key);
      if (size > MAX_KEY_BYTES) {
        throw new S3Error('KeyTooLongError', 'Your key is too long', { Size: size, MaxSizeAllowed: MAX_KEY_BYTES });
      }
      ctx.path = `/${parts.bucket}/${encodeURIComponent(key)}`;
    }
    normalizeCopySource(ctx);
    await next();
  };
}

/** Puts a middleware just before s3rver's router (after its XML encoder and vhost rewriting). */
function insertBeforeRouter(server: S3rverInstance, middleware: Middleware): void {
  const at = server.middleware.findIndex((m) => m.router !== undefined);
  if (at === -1) throw new Error("s3rver internals changed: cannot find the router's middleware");
  server.middleware.splice(at, 0, middleware);
}

// ---------------------------------------------------------------------------------------------
// Server

export interface EmbeddedS3Options {
  /** Where buckets and objects live; created if missing, kept across restarts. */
  directory: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  address?: string;
  /** Buckets to create if they do not exist yet. */
  buckets?: string[];
  /** No request log (the default). */
  silent?: boolean;
}

export interface EmbeddedS3 {
  endpoint: string;
  port: number;
  accessKeyId: 'S3RVER';
  secretAccessKey: 'S3RVER';
  /** Stops listening and closes connections (idle ones at once, busy ones after a second). */
  close(): Promise<void>;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Temp files left by a crash are garbage: nothing refers to them. */
async function removeStaleTempFiles(directory: string): Promise<void> {
  const entries = await fsp.readdir(directory, { withFileTypes: true });
  const buckets = entries.filter((e) => e.isDirectory()).map((e) => e.name);
  await Promise.all(buckets.map((b) => fsp.rm(path.join(directory, b, TEMP_DIR), { recursive: true, force: true })));
}

function endpointFor(address: string, port: number): string {
  const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address;
  return `http://${isIPv6(host) ? `[${host}]` : host}:${port}`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeIdleConnections();
    // A client in the middle of a long request should not hold up a shutdown forever.
    setTimeout(() => server.closeAllConnections(), 1000).unref();
  });
}

export async function startEmbeddedS3(opts: EmbeddedS3Options): Promise<EmbeddedS3> {
  const buckets = opts.buckets ?? [];
  const invalid = buckets.filter((b) => !BUCKET_NAME.test(b));
  if (invalid.length) throw new Error(`invalid bucket name(s): ${invalid.join(', ')}`);
  const directory = path.resolve(opts.directory);
  await fsp.mkdir(directory, { recursive: true });
  await removeStaleTempFiles(directory);

  installListHandler();
  const server = new S3rver({
    directory,
    address: opts.address ?? '127.0.0.1',
    port: opts.port ?? 0,
    silent: opts.silent ?? true,
    configureBuckets: buckets.map((name) => ({ name, configs: [] })),
  });
  server.store = server.context.store = new EmbeddedStore(directory);
  insertBeforeRouter(server, objectKeyMiddleware());

  const { address, port } = await server.run();
  const httpServer = server.httpServer;
  if (!httpServer) throw new Error('s3rver did not start an HTTP server');
  let closing: Promise<void> | undefined;
  return {
    endpoint: endpointFor(address, port),
    port,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    close: () => (closing ??= closeServer(httpServer)),
  };
}
