// The environment a sandboxed command gets: built from an allowlist of the
// host's variables, never by removing from the host's environment. Secrets
// (API keys, tokens, agent sockets) and variables that make programs load
// other code (LD_PRELOAD, NODE_OPTIONS, BASH_ENV, …) never come from the host.
// Variables the agent asks for are checked too: secret-looking ones and the
// ones the sandbox sets itself are refused; code-loading ones pass but are
// reported, so the command is asked about and the dialog says why.

/** Host variables a command may see. Names ending in `_*` are prefixes. */
export const ENV_ALLOWLIST: readonly string[] = [
  'PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'LC_*', 'TZ',
  // Toolchain locations builds need.
  'JAVA_HOME', 'GOPATH', 'GOROOT', 'GOBIN', 'GOFLAGS', 'CARGO_HOME', 'RUSTUP_HOME', 'NVM_DIR', 'NVM_BIN',
  'PYENV_ROOT', 'VOLTA_HOME', 'PNPM_HOME', 'BUN_INSTALL', 'DENO_INSTALL', 'ANDROID_HOME', 'ANDROID_SDK_ROOT',
  'GRADLE_USER_HOME', 'MAVEN_HOME', 'CONDA_PREFIX', 'VIRTUAL_ENV',
];

/** Never passed, even if allowlisted or asked for: names that look like secrets or sockets to them. */
const SECRET_NAME = /(^|_)(API_?KEY|APIKEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASS|CREDENTIALS?|AUTH|SESSION|COOKIE|PRIVATE)(_|$)|^(SSH_AUTH_SOCK|SSH_AGENT_PID|GPG_AGENT_INFO|DBUS_SESSION_BUS_ADDRESS|XDG_RUNTIME_DIR|DISPLAY|WAYLAND_DISPLAY|XAUTHORITY|KRB5CCNAME|AWS_.*|AZURE_.*|GOOGLE_APPLICATION_CREDENTIALS|GH_.*|GITHUB_.*|NPM_CONFIG_.*AUTH.*|VAULT_.*|DOCKER_.*|KUBECONFIG)$/i;

/** Make programs run code the command line does not show. */
const CODE_LOADING = /^(LD_PRELOAD|LD_LIBRARY_PATH|LD_AUDIT|DYLD_.*|NODE_OPTIONS|NODE_PATH|BASH_ENV|ENV|PROMPT_COMMAND|SHELLOPTS|BASHOPTS|IFS|PS4|CDPATH|GLOBIGNORE|PYTHONSTARTUP|PYTHONPATH|PYTHONHOME|PYTHONINSPECT|PERL5OPT|PERL5LIB|PERLLIB|RUBYOPT|RUBYLIB|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_JAVA_OPTIONS|GIT_.*|PAGER|EDITOR|VISUAL|BROWSER|LESSOPEN|LESSCLOSE|MANPAGER|GCONV_PATH|HOSTALIASES|LOCALDOMAIN|RES_OPTIONS|MALLOC_.*|GLIBC_TUNABLES|PATH|BASH_FUNC_.*)$/;

/** Set by the sandbox itself; the agent cannot change them. */
const SANDBOX_OWNED = new Set(['HOME', 'TMPDIR', 'TMP', 'TEMP', 'SHELL', 'TERM', 'TETHER_SANDBOX', 'USER', 'LOGNAME', 'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy', 'SRT_ALLOW_NESTED_USERNS']);

export interface CommandEnvironment {
  readonly env: Record<string, string>;
  /** Variables the agent asked for that were not set, with why. */
  readonly refused: readonly { readonly name: string; readonly why: string }[];
  /** Variables the agent set that make programs run other code: the command needs consent. */
  readonly codeLoading: readonly string[];
}

export interface BuildEnvOptions {
  /** The host's environment (process.env). */
  readonly host: Readonly<Record<string, string | undefined>>;
  /** Extra host variable names to pass (from settings). Secret-looking names are still refused. */
  readonly allow?: readonly string[];
  /** Variables the agent asked for in terminal/create. */
  readonly requested?: readonly { readonly name: string; readonly value: string }[];
  /** Inside the sandbox /tmp is private; outside it is a per-command directory. */
  readonly tmpDir: string;
}

export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name);
}

export function isCodeLoadingName(name: string): boolean {
  return CODE_LOADING.test(name);
}

function allowed(name: string, list: readonly string[]): boolean {
  return list.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

export function buildCommandEnv(opts: BuildEnvOptions): CommandEnvironment {
  const list = [...ENV_ALLOWLIST, ...(opts.allow ?? [])];
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(opts.host)) {
    if (value === undefined || !allowed(name, list) || isSecretName(name)) continue;
    env[name] = value;
  }
  env['PATH'] ??= '/usr/local/bin:/usr/bin:/bin';
  env['TERM'] = 'xterm-256color';
  env['SHELL'] = '/bin/bash';
  env['TMPDIR'] = opts.tmpDir;
  env['TMP'] = opts.tmpDir;
  env['TEMP'] = opts.tmpDir;
  env['TETHER_SANDBOX'] = '1';
  const refused: { name: string; why: string }[] = [];
  const codeLoading: string[] = [];
  for (const { name, value } of opts.requested ?? []) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) refused.push({ name, why: 'not a valid variable name' });
    else if (isSecretName(name)) refused.push({ name, why: 'it looks like a secret or a socket to one, and commands never get those' });
    else if (SANDBOX_OWNED.has(name)) refused.push({ name, why: 'the sandbox sets it' });
    else if (value.includes('\0')) refused.push({ name, why: 'the value contains a NUL byte' });
    else {
      if (isCodeLoadingName(name)) codeLoading.push(name);
      env[name] = value;
    }
  }
  return { env, refused, codeLoading };
}
