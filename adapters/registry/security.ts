/**
 * The connection configuration (runtime/connections.ts) as the schema registry client's options: basic or bearer
 * authentication and the CA to trust, for both HTTP paths of ConfluentSchemaRegistry (the
 * `@kafkajs/confluent-schema-registry` client and the plain REST calls beside it), so the two cannot disagree.
 */
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent } from 'node:https';
import { type Connections, processConnections } from '../../runtime/connections.ts';

export interface RegistrySecurity {
  /** The Authorization header to send, or undefined. A bearer token file is read again each time (rotation). */
  readonly authorization: () => string | undefined;
  /** An HTTPS agent trusting the configured CA (undefined: Node's trust store, or plain http). */
  readonly agent?: HttpsAgent;
}

/**
 * The registry's authentication and trust, from `connections.schemaRegistry`.
 *
 * @example
 * const security = registrySecurity();
 * fetchLike(url, { headers: { authorization: security.authorization() }, agent: security.agent });
 */
export function registrySecurity(connections: Connections = processConnections()): RegistrySecurity {
  const { auth, caFile } = connections.schemaRegistry;
  const agent = caFile ? new HttpsAgent({ ca: readFileSync(caFile), keepAlive: true }) : undefined;
  let authorization: () => string | undefined = () => undefined;
  if (auth?.kind === 'basic') {
    const header = `Basic ${Buffer.from(`${auth.username}:${auth.password.reveal()}`).toString('base64')}`;
    authorization = () => header;
  } else if (auth?.kind === 'bearer') {
    const { token, tokenFile } = auth;
    authorization = () => {
      // A rotated token (a projected service-account token, a refreshed secret) is picked up without a restart.
      if (!tokenFile) return `Bearer ${token.reveal()}`;
      try {
        return `Bearer ${readFileSync(tokenFile, 'utf8').replace(/\r?\n$/, '')}`;
      } catch {
        return `Bearer ${token.reveal()}`;
      }
    };
  }
  return agent ? { authorization, agent } : { authorization };
}
