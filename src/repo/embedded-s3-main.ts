/**
 * Runs the embedded S3 server as its own process, for tests and the CLI:
 *
 *   node dist/repo/embedded-s3-main.js --directory DIR [--port N] [--address A] [--bucket NAME ...] [--verbose]
 *
 * Prints one JSON line `{"endpoint":"http://127.0.0.1:PORT","port":PORT}` on stdout once it listens
 * (the parent reads it to learn the port when started with --port 0), and closes cleanly on SIGTERM
 * or SIGINT. Errors go to stderr with exit code 1 (2 for bad arguments).
 */
import { parseArgs } from 'node:util';
import { startEmbeddedS3, type EmbeddedS3Options } from './embedded-s3';

function usage(message: string): never {
  const synopsis = 'embedded-s3-main --directory DIR [--port N] [--address A] [--bucket NAME ...] [--verbose]';
  process.stderr.write(`embedded-s3: ${message}\nusage: ${synopsis}\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): EmbeddedS3Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        directory: { type: 'string' },
        port: { type: 'string' },
        address: { type: 'string' },
        bucket: { type: 'string', multiple: true },
        verbose: { type: 'boolean' },
      },
    }));
  } catch (err) {
    usage((err as Error).message);
  }
  if (!values.directory) usage('--directory is required');
  const port = Number(values.port ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`bad --port: ${values.port}`);
  return { directory: values.directory, port, address: values.address, buckets: values.bucket, silent: !values.verbose };
}

async function main(): Promise<void> {
  const server = await startEmbeddedS3(parseOptions(process.argv.slice(2)));
  const stop = (): void => {
    // A second signal while closing means "now".
    process.once('SIGTERM', () => process.exit(1));
    process.once('SIGINT', () => process.exit(1));
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`embedded-s3: close failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ endpoint: server.endpoint, port: server.port })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`embedded-s3: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
