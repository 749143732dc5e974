/**
 * `vigil pki init [--dir D] [--force]`: the development device CA and the gateway's server certificate
 * (identity/pki.ts). Refuses to replace an existing CA without --force: every enrolled device would lose its anchor.
 */
import type { Command } from 'commander';
import { fingerprintOf, initPki } from '../../identity/pki.ts';

export const DEFAULT_PKI_DIR = '.vigil/pki';

export function registerPki(program: Command): void {
  const pki = program.command('pki').description('The development PKI: device CA and gateway certificate');
  pki
    .command('init')
    .description('create the device CA (ca.crt, ca.key) and the gateway certificate (gateway.crt, gateway.key)')
    .option('--dir <dir>', 'where to write them', DEFAULT_PKI_DIR)
    .option('--force', 'replace an existing CA (every enrolled device must then be enrolled again)')
    .option('--json', 'print {"dir","ca_fingerprint","gateway_fingerprint"}')
    .action(async (flags: { dir: string; force?: boolean; json?: boolean }) => {
      const files = await initPki(flags.dir, { force: flags.force ?? false });
      const summary = {
        dir: flags.dir,
        ca_fingerprint: fingerprintOf(files.caCertPem),
        gateway_fingerprint: fingerprintOf(files.gatewayCertPem),
      };
      if (flags.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else
        process.stdout.write(
          `pki: device CA and gateway certificate in ${flags.dir} (CA sha256 ${summary.ca_fingerprint})\n`,
        );
    });
}
