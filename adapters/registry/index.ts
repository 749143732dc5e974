/**
 * Schema registries: the interface (./types.ts), the HTTP one for Kafka deployments and the in-process one for the
 * embedded mode, and registering the repo's subjects (./register.ts).
 */
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { ConfluentSchemaRegistry } from './confluent.ts';

export { ConfluentSchemaRegistry } from './confluent.ts';
export { InProcessSchemaRegistry } from './in-process.ts';
export type { RegisterReport, SubjectRegistration } from './register.ts';
export { registerRepo } from './register.ts';
export type { CompatibilityLevel, RegisteredVersion, SchemaRegistry } from './types.ts';

/**
 * The registry the environment names (`SCHEMA_REGISTRY_URL`, else the local stack's Apicurio ccompat API).
 *
 * @example
 * const registry = createSchemaRegistry();
 * const id = await registry.register('vigil.telemetry.raw-value', schema);
 */
export function createSchemaRegistry(url: string = resolveEndpoints().schemaRegistryUrl): ConfluentSchemaRegistry {
  return new ConfluentSchemaRegistry({ url });
}
