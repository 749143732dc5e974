/**
 * `vigil gateway`: the device ingestion gateway (distributed mode: Redis state, Kafka sinks, the device directory
 * followed from the device-identity topic, or from the file log under --control-dir). Parses flags; runtime/runners/gateway.ts
 * composes and runs it. Prints one JSON line `{"url","port","id"}` on stdout once it listens; SIGTERM drains. The shared
 * state's Redis keys start `vigil:` (`vigil:<VIGIL_TOPIC_PREFIX>:` in a topic namespace).
 */
import { hostname } from 'node:os';
import { type Command, Option } from 'commander';
import { loadPki } from '../../identity/pki.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { createLogger } from '../../runtime/log.ts';
import { runGateway } from '../../runtime/runners/gateway.ts';
import { stopSignal } from '../summary.ts';
import { deviceIdentityLog } from './devices.ts';
import { DEFAULT_PKI_DIR } from './pki.ts';
import { nonNegativeInt } from './run.ts';

export function registerGateway(program: Command): void {
  program
    .command('gateway')
    .description('Run the device ingestion gateway (mutual TLS, signed events, replay and abuse protection)')
    .addOption(new Option('--port <port>', 'HTTPS port (0: any free port)').argParser(nonNegativeInt).default(8443))
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--id <name>', 'gateway id stamped on every envelope and rejection (default gw-<hostname>)')
    .option('--pki-dir <dir>', 'the PKI vigil pki init wrote (server certificate, device CA)', DEFAULT_PKI_DIR)
    .option('--control-dir <dir>', 'follow the file device-identity log in <dir> instead of the Kafka topic')
    .addOption(
      new Option('--metrics-port <port>', 'serve /metrics here on loopback (0: off)')
        .argParser(nonNegativeInt)
        .default(9466),
    )
    .action(
      async (flags: {
        port: number;
        host: string;
        id?: string;
        pkiDir: string;
        controlDir?: string;
        metricsPort: number;
      }) => {
        const id = flags.id?.trim() || `gw-${hostname()}`;
        const endpoints = resolveEndpoints();
        const namespace = process.env.VIGIL_TOPIC_PREFIX?.trim();
        const log = createLogger('vigil-gateway');
        await runGateway({
          id,
          host: flags.host,
          port: flags.port,
          // Verifying devices needs the CA's certificate only: the CA's private key is never read here.
          pki: loadPki(flags.pkiDir, { verifyOnly: true }),
          identityLog: deviceIdentityLog(
            flags.controlDir ? { controlDir: flags.controlDir } : { brokers: endpoints.kafkaBrokers },
          ),
          endpoints,
          // A topic namespace (VIGIL_TOPIC_PREFIX: a staging environment, a test run) keeps its own Redis state.
          stateKeyPrefix: namespace ? `vigil:${namespace}:` : 'vigil:',
          metricsPort: flags.metricsPort,
          log,
          stopSignal: stopSignal(),
          onListening: (gateway) =>
            process.stdout.write(`${JSON.stringify({ url: gateway.url, port: gateway.port, id })}\n`),
        });
      },
    );
}
