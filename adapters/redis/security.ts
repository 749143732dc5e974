/**
 * The connection configuration (runtime/connections.ts) as ioredis options: TLS for a `rediss://` URL (with a private
 * CA when one is configured) and AUTH from a secret file, for every Redis client Vigil opens (state backend, gateway).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { RedisOptions } from 'ioredis';
import { type Connections, processConnections } from '../../runtime/connections.ts';

/**
 * ioredis options for `url` under `connections.redis`; `{}` for the local stack's `redis://` without a password.
 * A `rediss://` URL always gets TLS with certificate and host name checks (ioredis would too; made explicit here so a
 * CA can be added). Spread it after a client's own options.
 *
 * @example
 * new Redis(url, { lazyConnect: true, ...redisSecurityOptions(url) });
 */
export function redisSecurityOptions(url: string, connections: Connections = processConnections()): RedisOptions {
  const { username, password, caFile } = connections.redis;
  const options: RedisOptions = {};
  if (url.startsWith('rediss://')) {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    options.tls = {
      ...(caFile ? { ca: readFileSync(caFile) } : {}),
      // The URL's host name for SNI (ElastiCache serves one certificate per cluster); never an IP address, which
      // RFC 6066 forbids there (Node warns). The certificate's name is checked against the host either way.
      ...(isIP(host) ? {} : { servername: host }),
    };
  }
  if (username) options.username = username;
  if (password) options.password = password.reveal();
  return options;
}
