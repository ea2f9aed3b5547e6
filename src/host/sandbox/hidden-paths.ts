// What a sandboxed command must not read although the rest of the file system
// is readable: credential stores, keychains, browser profiles, shell
// histories, and Tether's own policy, audit and key files. Only paths that
// exist are hidden (bubblewrap mounts something in their place); one created
// while a command runs is not, which is why the parents of the sensitive ones
// are listed where the names vary (a browser's whole profile directory).
//
// Inside the workspace, the files policy forbids the agent to read (a
// project's .env, its keys) are found per command and hidden the same way:
// src/host/terminal/workspace-secrets.ts.

import { join } from 'node:path';

/** Relative to the home directory. */
export const HOME_HIDDEN: readonly string[] = [
  // Credentials and keys.
  '.ssh', '.aws', '.azure', '.config/gcloud', '.gnupg', '.kube', '.docker/config.json',
  '.netrc', '_netrc', '.git-credentials', '.config/git/credentials', '.pgpass', '.my.cnf',
  '.npmrc', '.yarnrc', '.yarnrc.yml', '.pypirc', '.gem/credentials', '.cargo/credentials', '.cargo/credentials.toml',
  '.config/gh', '.config/hub', '.config/glab-cli', '.vault-token', '.terraform.d/credentials.tfrc.json',
  '.config/op', '.password-store', '.config/rclone', '.s3cfg', '.boto', '.oci', '.ibmcloud', '.config/doctl',
  '.config/heroku', '.netlify', '.config/netlify', '.vercel', '.fly', '.config/configstore',
  // Keychains and keyrings.
  '.local/share/keyrings', '.pki', 'Library/Keychains',
  // Browser profiles and mail.
  '.mozilla', '.thunderbird', '.config/google-chrome', '.config/google-chrome-beta', '.config/chromium',
  '.config/BraveSoftware', '.config/microsoft-edge', '.config/vivaldi', '.config/opera', '.var/app',
  'snap/chromium', 'snap/firefox', 'Library/Application Support/Google/Chrome', 'Library/Application Support/Firefox',
  'Library/Cookies', 'Library/Safari',
  // Histories: typed secrets end up there.
  '.bash_history', '.zsh_history', '.history', '.python_history', '.node_repl_history', '.psql_history',
  '.mysql_history', '.sqlite_history', '.lesshst', '.viminfo',
];

/** Absolute paths hidden on every host. */
export const SYSTEM_HIDDEN: readonly string[] = ['/etc/shadow', '/etc/gshadow', '/etc/ssh', '/root/.ssh'];

export function defaultHiddenPaths(home: string, extra: readonly string[] = []): string[] {
  return [...HOME_HIDDEN.map((p) => join(home, p)), ...SYSTEM_HIDDEN, ...extra];
}
