/**
 * What is odd about a key file without making it unusable: warned about (once per file, in the
 * log at start and as a `warn` row of `ga-collector check`), never refused.
 *
 * Permissions: a private key readable by other users of the machine can be copied by any of
 * them, and a copy works from anywhere until the key is deleted in Google Cloud. ssh refuses such
 * keys outright; the collector only warns, because refusing would stop data collection over what
 * is often a container or a single-user host, and `chmod 600` is the whole fix.
 *
 * systemd's `LoadCredential=` is the exception. It writes the credential 0400, owned by root, and
 * grants the service's user read access with a POSIX ACL entry (falling back to chown where the
 * file system has no ACLs); `stat` then shows the ACL's mask in the group bits, so the file reads
 * as mode 0440 although no group can read it (systemd `src/core/exec-credential.c`,
 * `write_credential`). A file inside `$CREDENTIALS_DIRECTORY` is therefore not judged by its mode.
 */
import type fs from 'node:fs';
import path from 'node:path';

export interface KeyFileNote {
  code: 'mangled_newlines' | 'loose_permissions' | 'user_credentials';
  /** one line, names the file, never quotes the key */
  message: string;
  /** what to do, e.g. `chmod 600 FILE` */
  fix: string;
}

/** A warning when group or others may read or write the key file (mode & 0o077), else null. */
export function loosePermissionsNote(
  file: string,
  stat: fs.Stats,
  credentialsDirectory: string | undefined,
  actAs = 'the service account',
): KeyFileNote | null {
  // Windows has no such mode bits: Node reports 0o666 for every writable file there
  if (process.platform === 'win32') return null;
  const mode = stat.mode & 0o777;
  if ((mode & 0o077) === 0) return null;
  if (credentialsDirectory && isInside(file, credentialsDirectory)) return null;
  const open: string[] = [];
  if (mode & 0o044) open.push(`readable by ${mode & 0o004 ? 'every user of this machine' : 'its group'}`);
  if (mode & 0o022) open.push(`writable by ${mode & 0o002 ? 'every user of this machine' : 'its group'}`);
  if (open.length === 0) open.push('open to its group or others');
  return {
    code: 'loose_permissions',
    message: `key file ${file} is ${open.join(' and ')} (mode ${mode.toString(8).padStart(4, '0')}); anyone who copies it can act as ${actAs}`,
    fix: `chmod 600 ${file}`,
  };
}

function isInside(file: string, dir: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}
