/**
 * A Confluent-compatible schema registry over HTTP: Apicurio Registry's ccompat API locally
 * (`http://127.0.0.1:18081/apis/ccompat/v7`), Confluent or Apicurio elsewhere (`SCHEMA_REGISTRY_URL`).
 *
 * Schemas by id and registration go through `@kafkajs/confluent-schema-registry` 3.x (its cache, its wire format: the
 * client's own `decode` is what interoperability tests compare against). Listing versions, looking a schema up and
 * compatibility configuration are plain Confluent REST calls the client does not expose.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { SchemaRegistry as ConfluentClient } from '@kafkajs/confluent-schema-registry';
import type avsc from 'avsc';
import { VigilError } from '../../runtime/errors.ts';
import { UNREADABLE_WRITER } from '../avro/decoder.ts';
import type { CompatibilityLevel } from '../avro/schemas.ts';
import { COMPATIBILITY_LEVELS, hardened } from '../avro/schemas.ts';
import { type RegistrySecurity, registrySecurity } from './security.ts';
import type { RegisteredVersion, SchemaRegistry } from './types.ts';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** The client's own middleware type (mappersmith's, as the client was built against). */
type Middleware = NonNullable<ConstructorParameters<typeof ConfluentClient>[0]['middlewares']>[number];

export interface ConfluentRegistryOptions {
  /** Base URL of the Confluent API, e.g. `http://127.0.0.1:18081/apis/ccompat/v7`. */
  readonly url: string;
  /** Per-request timeout of every call to the registry (each attempt of the client's retries). Default 10 s. */
  readonly timeoutMs?: number;
  /** Authentication and trust; default: the process's connection configuration (runtime/connections.ts). */
  readonly security?: RegistrySecurity;
}

interface HttpError {
  status?: number;
  message?: string;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as HttpError | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

function text(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Registration attempts when the registry times out, fails in transit or answers 5xx (registering is idempotent). */
const REGISTER_ATTEMPTS = 3;

/**
 * Worth sending again: a 5xx or 408, or a failure in transit. The client reports the latter (its own timeout, a reset or
 * refused connection) as status 400 with no registry body, so its text reads "Error, status 400: <the socket's error>";
 * a registry's own 400 carries its message instead.
 */
function transient(error: unknown): boolean {
  const status = statusOf(error);
  if (status === undefined || status >= 500 || status === 408) return true;
  return status === 400 && /Error, status 400: /.test(text(error));
}

export class ConfluentSchemaRegistry implements SchemaRegistry {
  readonly kind = 'confluent' as const;
  readonly location: string;
  /** The underlying `@kafkajs/confluent-schema-registry` client (its `decode`/`encode` speak the same wire format). */
  readonly client: ConfluentClient;
  readonly #base: string;
  readonly #timeoutMs: number;
  readonly #writers = new Map<number, Promise<avsc.Type | null>>();

  constructor(options: ConfluentRegistryOptions) {
    this.#base = options.url.replace(/\/+$/, '');
    this.location = this.#base;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#security = options.security ?? registrySecurity();
    const authorization = this.#security.authorization;
    // One header for both paths (basic or bearer), set per request so a rotated bearer token is picked up.
    const authenticate: Middleware = () => ({
      async prepareRequest(next) {
        const request = await next();
        const header = authorization();
        return header ? request.enhance({ headers: { authorization: header } }) : request;
      },
    });
    // The client sets no timeout of its own: a registry that takes a request and never answers held `vigil schemas
    // register` forever. Each of its requests now gives up after timeoutMs (a socket idle that long); `register` sends
    // a registration that timed out again (below), the decoder's caller rides through a schema lookup that did.
    const timeoutMs = this.#timeoutMs;
    const timeout: Middleware = () => ({
      async prepareRequest(next) {
        return (await next()).enhance({ timeout: timeoutMs });
      },
    });
    this.client = new ConfluentClient({
      host: this.#base,
      clientId: 'vigil',
      middlewares: [authenticate, timeout],
      ...(this.#security.agent ? { agent: this.#security.agent } : {}),
    });
  }

  readonly #security: RegistrySecurity;

  getWriterType(id: number): Promise<avsc.Type | null> {
    const cached = this.#writers.get(id);
    if (cached) return cached;
    const pending = this.#fetchWriter(id);
    this.#writers.set(id, pending);
    // Only found schemas stay cached (ids are immutable); "unknown" and failures are asked again next time.
    pending.then(
      (type) => {
        if (type === null) this.#writers.delete(id);
      },
      () => this.#writers.delete(id),
    );
    return pending;
  }

  async #fetchWriter(id: number): Promise<avsc.Type | null> {
    let schema: unknown;
    try {
      schema = await this.client.getSchema(id);
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return null;
      if (status === undefined) return UNREADABLE_WRITER; // the text came back but is not a schema the client can build
      throw new VigilError('REGISTRY_UNAVAILABLE', `schema registry ${this.#base}: schema id ${id}: ${text(error)}`, {
        cause: error,
      });
    }
    // JSON Schema and Protobuf subjects come back as other objects: not something an Avro reader can resolve.
    const type = schema as avsc.Type;
    if (typeof type?.createResolver !== 'function' || typeof type.typeName !== 'string') return UNREADABLE_WRITER;
    return hardened(type);
  }

  async register(subject: string, schema: avsc.Schema): Promise<number> {
    const current = await this.getCompatibility(subject);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#registerOnce(subject, schema, current);
      } catch (error) {
        const again = error instanceof VigilError && error.code === 'REGISTRY_UNAVAILABLE' && transient(error.cause);
        if (!again || attempt >= REGISTER_ATTEMPTS) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
      }
    }
  }

  async #registerOnce(subject: string, schema: avsc.Schema, current: CompatibilityLevel | null): Promise<number> {
    try {
      // The client compares the subject's level with the one passed and refuses on a mismatch; pass what is set.
      const { id } = await this.client.register(
        { type: 'AVRO' as never, schema: JSON.stringify(schema) },
        { subject, ...(current ? { compatibility: current as never } : { compatibility: undefined as never }) },
      );
      return id;
    } catch (error) {
      const status = statusOf(error);
      if (status === 409) {
        throw new VigilError('SCHEMA_INCOMPATIBLE', `${subject}: the registry refused the schema: ${text(error)}`, {
          cause: error,
        });
      }
      if (status === 422) {
        throw new VigilError('CONFIG_INVALID', `${subject}: the registry rejected the schema: ${text(error)}`, {
          cause: error,
        });
      }
      throw new VigilError(
        'REGISTRY_UNAVAILABLE',
        `schema registry ${this.#base}: register ${subject}: ${text(error)}`,
        {
          cause: error,
        },
      );
    }
  }

  async lookup(subject: string, schema: avsc.Schema): Promise<{ id: number; version: number } | null> {
    const res = await this.#http('POST', `/subjects/${encodeURIComponent(subject)}`, {
      schema: JSON.stringify(schema),
    });
    if (res.status === 404) return null;
    const body = this.#expectOk(res, `look up a schema under ${subject}`) as { id: number; version: number };
    return { id: body.id, version: body.version };
  }

  async listVersions(subject: string): Promise<RegisteredVersion[]> {
    const path = `/subjects/${encodeURIComponent(subject)}/versions`;
    const res = await this.#http('GET', path);
    if (res.status === 404) return [];
    const versions = (this.#expectOk(res, `list versions of ${subject}`) as number[]).slice().sort((a, b) => a - b);
    const out: RegisteredVersion[] = [];
    for (const version of versions) {
      const one = await this.#http('GET', `${path}/${version}`);
      const body = this.#expectOk(one, `read version ${version} of ${subject}`) as { id: number; schema: string };
      out.push({ subject, version, id: body.id, schema: body.schema });
    }
    return out;
  }

  async getCompatibility(subject: string): Promise<CompatibilityLevel | null> {
    const res = await this.#http('GET', `/config/${encodeURIComponent(subject)}`);
    if (res.status === 404) return null;
    const body = this.#expectOk(res, `read the compatibility of ${subject}`) as {
      compatibilityLevel?: string;
      compatibility?: string;
    };
    const level = (body.compatibilityLevel ?? body.compatibility ?? '').toUpperCase();
    return (COMPATIBILITY_LEVELS as readonly string[]).includes(level) ? (level as CompatibilityLevel) : null;
  }

  async setCompatibility(subject: string, level: CompatibilityLevel): Promise<void> {
    const res = await this.#http('PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
    this.#expectOk(res, `set the compatibility of ${subject}`);
  }

  async #http(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    let res: { status: number; raw: string };
    try {
      res = await this.#send(method, path, body === undefined ? undefined : JSON.stringify(body));
    } catch (error) {
      throw new VigilError('REGISTRY_UNAVAILABLE', `schema registry ${this.#base}: ${method} ${path}: ${text(error)}`, {
        cause: error,
      });
    }
    const raw = res.raw;
    let json: unknown = null;
    try {
      json = raw ? JSON.parse(raw) : null;
    } catch {
      json = raw;
    }
    return { status: res.status, json };
  }

  /** node:http(s) rather than fetch: fetch cannot take the agent that trusts a private CA (SCHEMA_REGISTRY_CA_FILE). */
  #send(method: string, path: string, body: string | undefined): Promise<{ status: number; raw: string }> {
    const url = new URL(`${this.#base}${path}`);
    const authorization = this.#security.authorization();
    const headers: Record<string, string> = {
      accept: CONTENT_TYPE,
      ...(body === undefined
        ? {}
        : { 'content-type': CONTENT_TYPE, 'content-length': String(Buffer.byteLength(body)) }),
      ...(authorization ? { authorization } : {}),
    };
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method,
          headers,
          signal: AbortSignal.timeout(this.#timeoutMs),
          ...(url.protocol === 'https:' && this.#security.agent ? { agent: this.#security.agent } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, raw: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  #expectOk(res: { status: number; json: unknown }, what: string): unknown {
    if (res.status >= 200 && res.status < 300) return res.json;
    const message = (res.json as { message?: string } | null)?.message ?? JSON.stringify(res.json);
    const detail = `schema registry ${this.#base}: ${what}: HTTP ${res.status}: ${message}`;
    if (res.status === 409) throw new VigilError('SCHEMA_INCOMPATIBLE', detail);
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      throw new VigilError('CONFIG_INVALID', detail);
    }
    throw new VigilError('REGISTRY_UNAVAILABLE', detail);
  }
}
