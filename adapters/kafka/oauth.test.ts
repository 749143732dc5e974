import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConnections, PLAINTEXT_CONNECTIONS } from '../../runtime/connections.ts';
import { authenticateKafkaClient, OidcTokenSource } from './oauth.ts';

const SECRET = 'oauth-Client-Secret-never-logged';
const connections = loadConnections({
  KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
  KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
  KAFKA_OAUTH_TOKEN_ENDPOINT: 'https://idp.example.org/oauth2/token',
  KAFKA_OAUTH_CLIENT_ID: 'vigil-worker',
  KAFKA_OAUTH_CLIENT_SECRET: SECRET,
  KAFKA_OAUTH_SCOPE: 'kafka.write',
});
const settings = connections.kafka.sasl;
if (settings?.mechanism !== 'OAUTHBEARER') throw new Error('unreachable');

/** An identity provider's token endpoint answering in turn; records what it was asked. */
function tokenEndpoint(answers: { status: number; body: unknown }[]) {
  const requests: { url: string; init: RequestInit }[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    requests.push({ url, init });
    const answer = answers.shift() ?? { status: 500, body: {} };
    return new Response(JSON.stringify(answer.body), { status: answer.status });
  }) as unknown as typeof fetch;
  return { requests, fetchImpl };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('OidcTokenSource', () => {
  it('asks for client credentials with HTTP basic client authentication and the scope', async () => {
    const idp = tokenEndpoint([{ status: 200, body: { access_token: 'jwt-1', expires_in: 3600 } }]);
    const source = new OidcTokenSource(settings, { fetch: idp.fetchImpl, now: () => 1_000_000 });
    const token = await source.token();
    expect(token).toEqual({ value: 'jwt-1', refreshAt: 1_000_000 + 3600 * 800 });
    const { url, init } = idp.requests[0] as { url: string; init: RequestInit };
    expect(url).toBe('https://idp.example.org/oauth2/token');
    expect(String(init.body)).toBe('grant_type=client_credentials&scope=kafka.write');
    const basic = String((init.headers as Record<string, string>).authorization);
    expect(Buffer.from(basic.replace('Basic ', ''), 'base64').toString()).toBe(`vigil-worker:${SECRET}`);
  });

  it('keeps the token until 80% of its lifetime, then fetches a new one', async () => {
    let now = 0;
    const idp = tokenEndpoint([
      { status: 200, body: { access_token: 'jwt-1', expires_in: 100 } },
      { status: 200, body: { access_token: 'jwt-2', expires_in: 100 } },
    ]);
    const source = new OidcTokenSource(settings, { fetch: idp.fetchImpl, now: () => now });
    expect((await source.token()).value).toBe('jwt-1');
    now = 79_999;
    expect((await source.token()).value).toBe('jwt-1');
    now = 80_000;
    expect((await source.token()).value).toBe('jwt-2');
    expect(idp.requests).toHaveLength(2);
  });

  it('a refused client says what to check and never quotes the secret', async () => {
    const idp = tokenEndpoint([{ status: 401, body: { error: 'invalid_client', echo: SECRET } }]);
    const source = new OidcTokenSource(settings, { fetch: idp.fetchImpl });
    const error = await source.token().catch((e: Error) => e);
    expect((error as Error).message).toBe(
      'KAFKA_OAUTH_TOKEN_ENDPOINT https://idp.example.org/oauth2/token: HTTP 401 (invalid_client): check ' +
        'KAFKA_OAUTH_CLIENT_ID, KAFKA_OAUTH_CLIENT_SECRET_FILE and KAFKA_OAUTH_SCOPE',
    );
    expect((error as { code?: string }).code).toBe('CONFIG_INVALID');
  });
});

describe('authenticateKafkaClient', () => {
  it('does nothing unless the configuration is OAUTHBEARER', async () => {
    const client = { setOauthBearerToken: vi.fn(), once: vi.fn() };
    await authenticateKafkaClient(client, PLAINTEXT_CONNECTIONS);
    expect(client.setOauthBearerToken).not.toHaveBeenCalled();
  });

  it('sets the token before connect and a fresh one before it expires, until the client disconnects', async () => {
    vi.useFakeTimers({ now: 0 });
    const answers = [
      { access_token: 'jwt-1', expires_in: 60 },
      { access_token: 'jwt-2', expires_in: 60 },
    ];
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify(answers.shift()), { status: 200 }));
    try {
      const tokens: string[] = [];
      let onDisconnected = (): void => {};
      const client = {
        setOauthBearerToken: (token: string) => tokens.push(token),
        once: (_event: 'disconnected', listener: () => void) => {
          onDisconnected = listener;
        },
      };
      await authenticateKafkaClient(client, connections);
      expect(tokens).toEqual(['jwt-1']);
      await vi.advanceTimersByTimeAsync(48_000); // 80% of 60 s
      expect(tokens).toEqual(['jwt-1', 'jwt-2']);
      onDisconnected();
      await vi.advanceTimersByTimeAsync(120_000);
      expect(tokens).toEqual(['jwt-1', 'jwt-2']);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
