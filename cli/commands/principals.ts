/**
 * `vigil principals`: the local principals file (access/principals.ts) — who may read, in which roles, for which sites.
 *
 *   vigil principals add <name> --role R [--role R2] (--site S [--site S2] | --all-sites) [--json]
 *   vigil principals list [--json]
 *   vigil principals revoke <name> [--token-id ID]
 *
 * `add` creates the principal (or adds roles, sites and a new token to an existing one) and prints its new API token
 * once: the file keeps only a salted hash. Hand it over out of band; the holder passes it in VIGIL_TOKEN or a
 * VIGIL_TOKEN_FILE, never as a flag. The file is VIGIL_PRINCIPALS (default .vigil/access/principals.json).
 * Production uses the identity provider instead (VIGIL_OIDC_CONFIG, access/oidc.ts): no principals file at all.
 *
 * `add` and `revoke` are audit entries (`principal.add`, `principal.revoke`; target `principal:<name>`; roles, sites
 * and token id as a keyed digest; actor `--actor`, default the OS user; role operator), in the audit log of
 * `--audit-dir` (else the Kafka audit topic), which must open before the file is changed (cli/commands/control-audit.ts).
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { principalsPath } from '../../access/cli.ts';
import { ALL_SITES, addPrincipal, ROLES, type Role, readPrincipals, revokeTokens } from '../../access/principals.ts';
import type { ControlChange } from '../../identity/service.ts';
import { VigilError } from '../../runtime/errors.ts';
import { type ControlAuditFlags, controlAudit, controlAuditOptions } from './control-audit.ts';

interface AuditedFlags extends ControlAuditFlags {
  actor?: string;
}

const actorOf = (flags: AuditedFlags): string => {
  if (flags.actor?.trim()) return flags.actor.trim();
  try {
    return userInfo().username || 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
};

/** Records a change already written to the principals file; a failure names it (the file keeps the change). */
async function recordChange(audit: ReturnType<typeof controlAudit>, change: ControlChange) {
  await audit.record(change).catch((error: unknown) => {
    throw new VigilError(
      'AUDIT_UNAVAILABLE',
      `${change.action} ${change.target} is written but its audit entry could not be appended: ${(error as Error).message}`,
      { cause: error },
    );
  });
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function registerPrincipals(program: Command): void {
  const principals = program
    .command('principals')
    .description('Principals who may read through Vigil: roles, sites and API tokens (stored as salted hashes)');

  controlAuditOptions(principals.command('add'))
    .description('Add a principal (or a token, roles, sites to one) and print its new API token once')
    .argument('<name>', 'a staff pseudonym or service name, lower case (never a person’s name)')
    .option('--role <role>', `a role: ${ROLES.join(', ')} (repeat for more)`, collect, [])
    .option('--site <site>', 'a site whose rows it may see (repeat for more)', collect, [])
    .option('--all-sites', 'every site (for platform operators and auditors)')
    .option('--json', 'one JSON line: {"name","roles","sites","token","created"}')
    .option('--actor <name>', 'who makes the change (recorded in the audit log; default: the OS user name)')
    .action(
      async (
        name: string,
        flags: AuditedFlags & { role: string[]; site: string[]; allSites?: boolean; json?: boolean },
      ) => {
        if (flags.role.length === 0)
          throw new VigilError('CONFIG_INVALID', `give at least one --role (${ROLES.join(', ')})`);
        const unknown = flags.role.filter((r) => !(ROLES as readonly string[]).includes(r));
        if (unknown.length > 0) {
          throw new VigilError('CONFIG_INVALID', `unknown role ${unknown.join(', ')}: one of ${ROLES.join(', ')}`);
        }
        if (flags.site.length > 0 === (flags.allSites === true)) {
          throw new VigilError('CONFIG_INVALID', 'give --site S (repeatable) or --all-sites, not both and not neither');
        }
        const path = principalsPath();
        const sites = flags.allSites ? [ALL_SITES] : flags.site;
        const audit = controlAudit(flags);
        await audit.ready();
        const { token, created } = addPrincipal(path, { name, roles: flags.role as Role[], sites });
        const record = readPrincipals(path).principals.find((p) => p.name === name)!;
        await recordChange(audit, {
          actor: actorOf(flags),
          action: 'principal.add',
          target: `principal:${name}`,
          details: { roles: record.roles, sites: record.sites, token_id: record.tokens.at(-1)?.id, created },
          at: Date.now(),
        });
        if (flags.json) {
          const out = { name, roles: record.roles, sites: record.sites, token, created };
          process.stdout.write(`${JSON.stringify(out)}\n`);
          return;
        }
        process.stdout.write(
          `${created ? 'added' : 'updated'} ${name} (${record.roles.join(', ')}; sites ${record.sites.join(', ')}) in ${path}\n` +
            `token (shown once; pass it in VIGIL_TOKEN or a 0600 VIGIL_TOKEN_FILE):\n${token}\n`,
        );
      },
    );

  principals
    .command('list')
    .description('The principals, their roles and sites, and how many tokens each holds (never the tokens)')
    .option('--json', 'one JSON line: [{"name","roles","sites","tokens"}]')
    .action((flags: { json?: boolean }) => {
      const list = readPrincipals(principalsPath()).principals.map((p) => ({
        name: p.name,
        roles: p.roles,
        sites: p.sites,
        tokens: p.tokens.map((t) => ({ id: t.id, created_at: t.created_at })),
      }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(list)}\n`);
        return;
      }
      for (const p of list) {
        process.stdout.write(
          `${p.name}  ${p.roles.join(',')}  sites ${p.sites.join(',')}  tokens ${p.tokens.length}\n`,
        );
      }
      if (list.length === 0) process.stdout.write('no principals\n');
    });

  controlAuditOptions(principals.command('revoke'))
    .description('Revoke one token (--token-id) or every token of a principal')
    .argument('<name>', 'the principal')
    .option('--token-id <id>', 'the token id (the 16 hex after vgl_)')
    .option('--actor <name>', 'who makes the change (recorded in the audit log; default: the OS user name)')
    .action(async (name: string, flags: AuditedFlags & { tokenId?: string }) => {
      const audit = controlAudit(flags);
      await audit.ready();
      const n = revokeTokens(principalsPath(), name, flags.tokenId);
      if (n > 0) {
        const details = { token_id: flags.tokenId ?? null, revoked: n };
        const change = { actor: actorOf(flags), action: 'principal.revoke', target: `principal:${name}`, details };
        await recordChange(audit, { ...change, at: Date.now() });
      }
      process.stdout.write(`revoked ${n} token${n === 1 ? '' : 's'} of ${name}\n`);
    });
}
