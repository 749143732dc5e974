/**
 * The connection configuration (runtime/connections.ts) as `@clickhouse/client` options: user, password, role(s)
 * and the CA for an `https://` server, for every ClickHouse server client Vigil opens (adapters/clickhouse/server.ts).
 */
import { readFileSync } from 'node:fs';
import { type Connections, processConnections } from '../../runtime/connections.ts';

export interface ClickHouseSecurityOptions {
  username?: string;
  password?: string;
  role?: string | string[];
  tls?: { ca_cert: Buffer };
}

/**
 * Client options from `connections.clickhouse`; `{}` for the local stack (no user, plain HTTP).
 *
 * @example
 * createClient({ url, ...clickhouseSecurityOptions() });
 */
export function clickhouseSecurityOptions(connections: Connections = processConnections()): ClickHouseSecurityOptions {
  const { username, password, roles, caFile } = connections.clickhouse;
  const options: ClickHouseSecurityOptions = {};
  if (username) options.username = username;
  if (password) options.password = password.reveal();
  if (roles && roles.length > 0) options.role = roles.length === 1 ? (roles[0] as string) : [...roles];
  if (caFile) options.tls = { ca_cert: readFileSync(caFile) };
  return options;
}
