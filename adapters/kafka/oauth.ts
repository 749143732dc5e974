/**
 * OAUTHBEARER tokens for Kafka clients, fetched by Vigil itself (OAuth 2.0 client credentials against
 * KAFKA_OAUTH_TOKEN_ENDPOINT) and handed to each node-rdkafka client with `setOauthBearerToken`, again before each
 * expiry.
 *
 * Why not librdkafka's built-in OIDC (`sasl.oauthbearer.method=oidc`): the node-rdkafka build Vigil installs has no
 * libcurl, so librdkafka refuses that property ("OAuth/OIDC depends on libcurl ... not available at build time"), and
 * node-rdkafka exposes no token-refresh callback; it sets a token with a far-off expiry and leaves refreshing to the
 * caller. This module is that caller. It is also the place a non-OIDC token source would plug in (MSK IAM's signed
 * tokens: see docs/reference/connections.md).
 */
import { type Connections, processConnections } from '../../runtime/connections.ts';
import { VigilError } from '../../runtime/errors.ts';

/** What a node-rdkafka client offers for OAUTHBEARER (Producer, KafkaConsumer). */
export interface OauthBearerClient {
  setOauthBearerToken(token: string): unknown;
  once(event: 'disconnected', listener: () => void): unknown;
}

interface CachedToken {
  readonly value: string;
  /** When to fetch a new one: 80% into its lifetime, so a slow endpoint never leaves a client on an expired token. */
  readonly refreshAt: number;
}

type OauthSettings = Extract<NonNullable<Connections['kafka']['sasl']>, { mechanism: 'OAUTHBEARER' }>;

/** Fetches and caches client-credentials tokens for one configuration; shared by every client of the process. */
export class OidcTokenSource {
  readonly #settings: OauthSettings;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  #cached: CachedToken | undefined;
  #pending: Promise<CachedToken> | undefined;

  constructor(settings: OauthSettings, options: { fetch?: typeof fetch; now?: () => number } = {}) {
    this.#settings = settings;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
  }

  /** A valid token, fetched when none is cached or the cached one is due for refresh. */
  async token(): Promise<CachedToken> {
    if (this.#cached && this.#now() < this.#cached.refreshAt) return this.#cached;
    this.#pending ??= this.#request().finally(() => {
      this.#pending = undefined;
    });
    this.#cached = await this.#pending;
    return this.#cached;
  }

  async #request(): Promise<CachedToken> {
    const { tokenEndpoint, clientId, clientSecret, scope } = this.#settings;
    const body = new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) });
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret.reveal())}`);
    let response: Response;
    try {
      response = await this.#fetch(tokenEndpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${basic.toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body,
        signal: AbortSignal.timeout(15_000),
      });
    } catch (error) {
      throw new VigilError(
        'KAFKA_UNAVAILABLE',
        `KAFKA_OAUTH_TOKEN_ENDPOINT ${tokenEndpoint}: cannot reach it (${(error as Error).message})`,
        { cause: error },
      );
    }
    // The body of a refusal may echo the request: only the status and the OAuth error code are kept.
    const json = (await response.json().catch(() => null)) as {
      access_token?: unknown;
      expires_in?: unknown;
      error?: unknown;
    } | null;
    if (!response.ok || typeof json?.access_token !== 'string' || json.access_token === '') {
      const code = typeof json?.error === 'string' ? ` (${json.error.slice(0, 64)})` : '';
      throw new VigilError(
        response.status === 401 || response.status === 400 ? 'CONFIG_INVALID' : 'KAFKA_UNAVAILABLE',
        `KAFKA_OAUTH_TOKEN_ENDPOINT ${tokenEndpoint}: HTTP ${response.status}${code}: check KAFKA_OAUTH_CLIENT_ID, ` +
          'KAFKA_OAUTH_CLIENT_SECRET_FILE and KAFKA_OAUTH_SCOPE',
      );
    }
    const lifetimeS = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 300;
    return { value: json.access_token, refreshAt: this.#now() + lifetimeS * 800 };
  }
}

let shared: { settings: OauthSettings; source: OidcTokenSource } | undefined;

function sourceFor(connections: Connections): OidcTokenSource | undefined {
  const sasl = connections.kafka.sasl;
  if (sasl?.mechanism !== 'OAUTHBEARER') return undefined;
  if (shared?.settings !== sasl) shared = { settings: sasl, source: new OidcTokenSource(sasl) };
  return shared.source;
}

/**
 * The first token for a client that takes it at creation (node-rdkafka's AdminClient.create); undefined unless the
 * configuration is OAUTHBEARER.
 *
 * @example
 * const admin = Kafka.AdminClient.create(config, await kafkaOauthToken());
 */
export async function kafkaOauthToken(connections: Connections = processConnections()): Promise<string | undefined> {
  return (await sourceFor(connections)?.token())?.value;
}

/**
 * Gives `client` its OAUTHBEARER token before it connects, and a fresh one before each expiry until it disconnects.
 * Does nothing unless the configuration is OAUTHBEARER. Call it right before `connect`.
 *
 * @example
 * await authenticateKafkaClient(producer);
 * producer.connect({ timeout: 15_000 }, callback);
 */
export async function authenticateKafkaClient(
  client: OauthBearerClient,
  connections: Connections = processConnections(),
): Promise<void> {
  const source = sourceFor(connections);
  if (!source) return;
  const first = await source.token();
  client.setOauthBearerToken(first.value);
  let timer: NodeJS.Timeout | undefined;
  const schedule = (refreshAt: number): void => {
    timer = setTimeout(
      () => {
        source.token().then(
          (next) => {
            client.setOauthBearerToken(next.value);
            schedule(next.refreshAt);
          },
          // The endpoint is down: keep the current token (still valid for ~20% of its life) and try again soon.
          () => schedule(Date.now() + 10_000),
        );
      },
      Math.max(1_000, refreshAt - Date.now()),
    );
    // A refresh timer never keeps a finished process alive.
    timer.unref();
  };
  schedule(first.refreshAt);
  client.once('disconnected', () => clearTimeout(timer));
}
