/**
 * The connection configuration (runtime/connections.ts) as librdkafka properties: the one place every node-rdkafka
 * client in Vigil (consumers, producers, admin clients, the control and audit logs) takes its security settings from,
 * so none is left on plaintext defaults when the configuration says otherwise. Spread it LAST into a client's config:
 * a caller's extra settings cannot downgrade it.
 */
import { type Connections, processConnections } from '../../runtime/connections.ts';

/**
 * librdkafka properties for `connections.kafka`; `{}` for PLAINTEXT (the local stack), so nothing changes there.
 * For OAUTHBEARER it only names the mechanism: the token comes from `authenticateKafkaClient` (./oauth.ts), which every
 * client creation site calls before connecting.
 *
 * @example
 * new Kafka.Producer({ 'metadata.broker.list': brokers, ...kafkaSecurityConfig() });
 * kafkaSecurityConfig(loadConnections({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', ... }));
 * // { 'security.protocol': 'sasl_ssl', 'sasl.mechanisms': 'SCRAM-SHA-512', 'sasl.username': ..., 'sasl.password': ... }
 */
export function kafkaSecurityConfig(connections: Connections = processConnections()): Record<string, string> {
  const { securityProtocol, ssl, sasl } = connections.kafka;
  if (securityProtocol === 'PLAINTEXT') return {};
  const config: Record<string, string> = { 'security.protocol': securityProtocol.toLowerCase() };
  if (ssl.caFile) config['ssl.ca.location'] = ssl.caFile;
  if (ssl.certFile) config['ssl.certificate.location'] = ssl.certFile;
  if (ssl.keyFile) config['ssl.key.location'] = ssl.keyFile;
  if (ssl.keyPassword) config['ssl.key.password'] = ssl.keyPassword.reveal();
  if (sasl?.mechanism === 'OAUTHBEARER') {
    // The token itself is fetched by Vigil and set on each client (./oauth.ts: authenticateKafkaClient): this
    // librdkafka build has no OIDC client of its own.
    config['sasl.mechanisms'] = 'OAUTHBEARER';
  } else if (sasl) {
    config['sasl.mechanisms'] = sasl.mechanism;
    config['sasl.username'] = sasl.username;
    config['sasl.password'] = sasl.password.reveal();
  }
  return config;
}

/**
 * What to check when a secured client cannot connect, appended to KAFKA_UNAVAILABLE messages: librdkafka's own text
 * ("Local: Broker transport failure", "timed out") rarely names the cause of an authentication or trust failure.
 *
 * @example
 * reject(new VigilError('KAFKA_UNAVAILABLE', `cannot reach Kafka at ${brokers}: ${err.message}${kafkaConnectHint()}`));
 */
export function kafkaConnectHint(connections: Connections = processConnections()): string {
  const { securityProtocol, ssl, sasl } = connections.kafka;
  if (securityProtocol === 'PLAINTEXT') return '';
  const checks: string[] = [`the brokers listen with ${securityProtocol} on that port`];
  if (securityProtocol === 'SSL' || securityProtocol === 'SASL_SSL') {
    checks.push(
      ssl.caFile
        ? `KAFKA_SSL_CA_FILE (${ssl.caFile}) signs their certificates`
        : 'the brokers certificate is trusted (set KAFKA_SSL_CA_FILE for a private CA)',
    );
  }
  if (sasl && sasl.mechanism !== 'OAUTHBEARER')
    checks.push(`the ${sasl.mechanism} user and KAFKA_SASL_PASSWORD(_FILE)`);
  if (sasl?.mechanism === 'OAUTHBEARER') checks.push('KAFKA_OAUTH_TOKEN_ENDPOINT and the client id and secret');
  return ` (secured connection: check ${checks.join(', ')})`;
}

/**
 * The broker-side cause librdkafka recorded while a client tried to connect (`client.lastError`: "SASL authentication
 * error: Authentication failed ... invalid credentials", "SSL handshake failed: ... certificate verify failed"), for a
 * connect failure's message: its own callback error only says the connection timed out. Only authentication and TLS
 * texts are kept; they never hold a credential.
 *
 * @example
 * reject(new VigilError('KAFKA_UNAVAILABLE', `cannot reach Kafka: ${err.message}${brokerCause(producer)}`));
 */
export function brokerCause(client: object): string {
  // node-rdkafka keeps the last 'event.error' on the client (lib/client.js); its typings do not declare it.
  const lastError = (client as { lastError?: { message?: unknown } }).lastError;
  const message = lastError?.message;
  if (typeof message !== 'string' || !/sasl|ssl|tls|authenticat|certificate|handshake/i.test(message)) return '';
  return `; the broker connection failed with: ${message.slice(0, 300)}`;
}
