// A parser for the shell command lines agents send to `terminal/create`, so
// that policy decides on each command a line runs and on each file it writes,
// not on the line as one string.
//
// It is a reader of bash syntax, not a shell: it never expands, runs or looks
// anything up. What it gives the host:
//  - every simple command, wherever it sits: lists (`;` `&&` `||` `&`,
//    newlines), pipelines (`|` `|&`), subshells, `{ …; }` groups, `$(…)`,
//    backticks, `<(…)` `>(…)`, `if`/`while`/`until`/`for`/`case` bodies, the
//    string of `bash -c '…'` (and sh, dash, zsh, ksh), the command behind
//    wrappers (env, sudo, timeout, nice, nohup, xargs, exec, command, …) and
//    `find -exec`;
//  - words with quotes and escapes removed, `~` and variables whose value is
//    known (the environment given, `X=lit` earlier in the line) substituted;
//  - redirections with their mode, the paths a few well-known programs write
//    or delete (tee, touch, mkdir, rm, rmdir, unlink, cp, mv, ln, install,
//    dd of=, truncate, sed -i, chmod/chown/chgrp, curl -o, wget -O), and the
//    files some read by name (cat, head, grep, jq, awk, sed, cp, curl -T/-d @,
//    `<`, …) — so `cat .env` meets the same policy as read_file .env;
//  - the working directory each command runs in, following literal `cd`.
//
// It marks the parse *uncertain* (the host then asks, and says why) where the
// line's meaning is only known when it runs: eval, source/`.`, a program name
// that is a variable, substitution or glob, `bash -c` with a string that is
// not a literal, a shell reading commands from a pipe or a here-doc it cannot
// read, an unterminated here-doc or quote, alias definitions, shell function
// definitions (calls to them look like ordinary programs), coproc, a write to
// a path that is a variable, substitution or a glob outside its last
// component, and syntax it does not recognise.
//
// What it does not understand, and so never relies on:
//  - reads through globs, variables, directories (`grep -r KEY .`) or any
//    program not in the reader table: listed as written or not at all;
//  - what a program does with its arguments beyond the tables above: `make`,
//    `npm test`, `git`, `python3 script.py`, `awk`, `sed` scripts and any
//    script file may write anywhere the sandbox lets them (the sandbox, not
//    this parser, is what confines them);
//  - inline code (`python3 -c`, `node -e`, `perl -e`, …) is noted, not read;
//  - glob and brace expansion results, word splitting of unquoted variables,
//    `IFS`, `set -f`, `shopt` options (extglob, expand_aliases, …);
//  - variables changed by the commands themselves (`read`, `export $(…)`,
//    loops) — such variables are treated as unknown from then on;
//  - whether a `cd` succeeds: later commands are taken to run where it went;
//  - arithmetic (`$((…))`, `((…))`) beyond skipping it;
//  - zsh/fish-only syntax.

export interface ShellWord {
  /** The value the command sees when it is known; the source text where it is not. */
  readonly text: string;
  /** As written in the line. */
  readonly raw: string;
  /** Part of the value is only known when the line runs ($X, $(…), `…`, $((…)), ~user). */
  readonly dynamic: boolean;
  /** Unquoted `*`, `?`, `[…]` or `{a,b}`: the shell may turn it into other or several words. */
  readonly glob: boolean;
  /** Unquoted brace expansion (`{a,b}`, `{1..3}`). */
  readonly brace: boolean;
  /** A process substitution (`<(…)`, `>(…)`): a pipe, not a file. */
  readonly procSub: boolean;
}

export type RedirectMode = 'write' | 'append' | 'read' | 'read-write' | 'dup' | 'here-doc' | 'here-string';

export interface ShellRedirect {
  readonly op: string;
  readonly fd: number | 'all';
  readonly mode: RedirectMode;
  readonly target?: ShellWord;
  /** Here-doc body as written, when it could be read. */
  readonly body?: string;
}

export type PartOrigin =
  | 'command' | 'subshell' | 'group' | 'substitution' | 'process-substitution'
  | 'shell-c' | 'shell-stdin' | 'wrapped' | 'find-exec' | 'xargs' | 'function' | 'condition';

export interface ShellPart {
  readonly index: number;
  /** The program word's text ('' for a line of only assignments or redirections). */
  readonly program: string;
  readonly args: readonly string[];
  /** Program and arguments as words. */
  readonly words: readonly ShellWord[];
  readonly assignments: readonly { readonly name: string; readonly value: ShellWord }[];
  readonly redirects: readonly ShellRedirect[];
  /** The command as it appears in the line (or in the string of `bash -c`). */
  readonly source: string;
  readonly origin: PartOrigin;
  /**
   * Where it runs, relative to the command's working directory ('' = there),
   * or absolute; null when a `cd` went somewhere not known in advance.
   */
  readonly cwd: string | null;
  readonly notes: readonly string[];
}

export type PathAccessKind = 'write' | 'delete' | 'read';

/** A file the line writes, deletes or reads, known from a redirection or the program tables. */
export interface ShellPathAccess {
  readonly path: string;
  readonly word: ShellWord;
  readonly access: PathAccessKind;
  /** `>`, `>>`, `tee`, `rm`, … */
  readonly via: string;
  /** Index of the part that does it (-1 for a redirection of a whole subshell or group). */
  readonly part: number;
  /** As ShellPart.cwd: what a relative `path` is relative to. */
  readonly cwd: string | null;
}

export interface ShellParse {
  readonly line: string;
  readonly parts: readonly ShellPart[];
  readonly writes: readonly ShellPathAccess[];
  /**
   * Files the line reads by name (`<` redirections; operands of cat, head,
   * grep, cp, curl -T, …). A read with a variable or glob in it is listed as
   * written, without making the parse uncertain: what a command reads is
   * confined by the sandbox, this list is for policy on named files.
   */
  readonly reads: readonly ShellPathAccess[];
  /** Why the parse cannot be relied on; empty when it can. Each says what and where. */
  readonly uncertain: readonly string[];
  /** Things a reviewer should know that do not make the parse uncertain (inline code, background jobs). */
  readonly notes: readonly string[];
}

export interface ShellParseOptions {
  /** Variables whose values are known (the environment the command gets). HOME gives `~`. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Paths that are never files on disk: writing to them is not a file write. */
const PSEUDO_FILES = new Set(['/dev/null', '/dev/stdout', '/dev/stderr', '/dev/stdin', '/dev/tty', '/dev/zero', '/dev/full']);
export function isPseudoFile(path: string): boolean {
  return PSEUDO_FILES.has(path) || /^\/dev\/fd\/\d+$/.test(path) || /^\/proc\/self\/fd\/\d+$/.test(path);
}

const MAX_DEPTH = 16;

export function parseShell(line: string, options: ShellParseOptions = {}): ShellParse {
  const shared: Shared = { parts: [], writes: [], reads: [], uncertain: [], notes: [] };
  const known = new Map<string, string>(Object.entries(options.env ?? {}));
  const p = new Parser(line, shared, { known, exported: new Set(known.keys()) }, '', 'command', 0);
  p.parseTop();
  return { line, parts: shared.parts, writes: shared.writes, reads: shared.reads, uncertain: dedupe(shared.uncertain), notes: dedupe(shared.notes) };
}

/** Quotes a word for bash so that it is read back as exactly `s`. */
export function quoteShellWord(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---------------------------------------------------------------------------

interface Shared {
  parts: ShellPart[];
  writes: ShellPathAccess[];
  reads: ShellPathAccess[];
  uncertain: string[];
  notes: string[];
}

interface PendingHereDoc {
  delimiter: string;
  quoted: boolean;
  stripTabs: boolean;
  set: (body: string | undefined) => void;
}

/** Shell variables whose values are known at this point of the line. */
interface Vars {
  known: Map<string, string>;
  exported: Set<string>;
}

function copyVars(v: Vars, exportedOnly = false): Vars {
  const known = new Map([...v.known].filter(([k]) => !exportedOnly || v.exported.has(k)));
  return { known, exported: new Set(v.exported) };
}

interface MutablePart {
  words: ShellWord[];
  assignments: { name: string; value: ShellWord }[];
  redirects: ShellRedirect[];
  start: number;
  end: number;
}

const RESERVED_SKIP = new Set(['if', 'then', 'elif', 'else', 'fi', 'do', 'done', 'while', 'until', '!', 'time', '{', '}']);
const SHELLS = new Set(['bash', 'sh', 'dash', 'zsh', 'ksh', 'mksh', 'ash', 'rbash', 'posh', 'yash']);
const INLINE_CODE: Readonly<Record<string, readonly string[]>> = {
  python: ['-c'], python2: ['-c'], python3: ['-c'], pypy: ['-c'], pypy3: ['-c'],
  node: ['-e', '--eval', '-p', '--print'], nodejs: ['-e', '--eval', '-p', '--print'], bun: ['-e', '--eval'], deno: ['eval'],
  perl: ['-e', '-E'], ruby: ['-e'], php: ['-r'], lua: ['-e'], Rscript: ['-e'], osascript: ['-e'],
};

/** Programs whose file arguments recordWriterArgs knows. */
const WRITERS = new Set(['tee', 'touch', 'mkdir', 'rm', 'rmdir', 'unlink', 'shred', 'truncate', 'chmod', 'chown', 'chgrp', 'cp', 'mv', 'ln', 'install', 'dd', 'sed', 'curl', 'wget']);

const META = new Set([' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>']);

class Parser {
  private pos = 0;
  private pendingHereDocs: PendingHereDoc[] = [];
  /** Callbacks waiting for a here-doc body (a shell reading its commands from one). */
  private readonly hereDocWaiters = new Map<ShellRedirect, ((body: string | undefined) => void)[]>();
  private readonly src: string;
  private readonly shared: Shared;
  private vars: Vars;
  /** Nesting of while/until/for/select: a variable assigned inside may differ on the next round. */
  private loopDepth = 0;
  /** Nesting of subshells, groups and substitutions within this parser (bounded with `depth`). */
  private nest = 0;
  private readonly readInLoop = new Set<string>();
  private cwd: string | null;
  private readonly origin: PartOrigin;
  private readonly depth: number;

  constructor(src: string, shared: Shared, vars: Vars, cwd: string | null, origin: PartOrigin, depth: number) {
    this.src = src;
    this.shared = shared;
    this.vars = vars;
    this.cwd = cwd;
    this.origin = origin;
    this.depth = depth;
  }

  parseTop(): void {
    if (this.depth > MAX_DEPTH) {
      this.uncertain(`the line nests commands more than ${MAX_DEPTH} deep`);
      return;
    }
    this.parseList(new Set(), this.origin);
    if (this.pos < this.src.length) {
      this.uncertain(`unexpected "${this.src[this.pos]}" at character ${this.pos + 1}`);
    }
    if (this.pendingHereDocs.length > 0) this.readHereDocs();
  }

  // ---- lists and pipelines ----

  /** Parses commands until EOF or a terminator word/operator (not consumed). */
  private parseList(terminators: ReadonlySet<string>, origin: PartOrigin): void {
    for (;;) {
      this.skipBlanksAndNewlines();
      if (this.pos >= this.src.length) return;
      const op = this.peekOperator();
      if (op !== undefined && terminators.has(op)) return;
      if (op === ')' ) return;
      if (op === ';' || op === '&' || op === ';;' || op === ';&' || op === ';;&') {
        if (terminators.has(op)) return;
        if (op !== ';' && op !== '&') {
          this.uncertain(`unexpected "${op}" outside a case statement`);
        }
        this.pos += op.length;
        continue;
      }
      const word = this.peekReservedWord();
      if (word !== undefined && terminators.has(word)) return;
      this.parsePipeline(origin, terminators);
      this.skipBlanks();
      const sep = this.peekOperator();
      if (sep === '&&' || sep === '||' || sep === ';' || sep === '&') {
        if (sep === '&') this.note('a command runs in the background; it is stopped when the line ends');
        this.pos += sep.length;
        continue;
      }
      if (this.peek() === '\n') continue;
      return;
    }
  }

  private parsePipeline(origin: PartOrigin, terminators: ReadonlySet<string>): void {
    // Each stage of a pipeline of two or more runs in its own subshell: a cd or
    // an assignment there stays there. Whether there is a second stage is only
    // known after the first, so the first stage's effects are undone afterwards.
    const savedVars = copyVars(this.vars);
    const savedCwd = this.cwd;
    let stage = 0;
    for (;;) {
      this.skipBlanks();
      this.parseCommand(origin, stage > 0, terminators);
      this.skipBlanks();
      const op = this.peekOperator();
      if (op === '|' || op === '|&') {
        this.pos += op.length;
        this.cwd = savedCwd;
        this.vars = copyVars(savedVars);
        stage++;
        this.skipBlanksAndNewlines();
        continue;
      }
      if (stage > 0) {
        this.cwd = savedCwd;
        this.vars = savedVars;
      }
      return;
    }
  }

  /** One command: compound (subshell, group, if/while/for/case) or simple. */
  private parseCommand(origin: PartOrigin, fromPipe: boolean, terminators: ReadonlySet<string>): void {
    this.skipBlanks();
    const c = this.peek();
    if (c === '(') {
      if (this.src.startsWith('((', this.pos)) {
        this.skipArithmetic(this.pos + 2);
        this.parseTrailingRedirects(-1);
        return;
      }
      this.pos++;
      this.scoped(() => {
        this.parseList(new Set([')']), 'subshell');
        this.expect(')', 'a subshell');
      });
      this.parseTrailingRedirects(-1);
      return;
    }
    const reserved = this.peekReservedWord();
    if (reserved !== undefined) {
      if (terminators.has(reserved)) return;
      switch (reserved) {
        case '{':
          this.pos++;
          if (!this.enter()) return;
          this.parseList(new Set(['}']), 'group');
          this.nest--;
          this.expectWord('}', 'a { … } group');
          this.parseTrailingRedirects(-1);
          return;
        case 'for':
        case 'select':
          this.parseFor(reserved);
          return;
        case 'case':
          this.parseCase(origin);
          return;
        case 'function':
          this.parseFunction(true);
          return;
        case 'coproc':
          this.pos += reserved.length;
          this.uncertain('coproc starts a background process that the rest of the line talks to');
          this.parseCommand(origin, fromPipe, terminators);
          return;
        case '[[':
          this.parseDoubleBracket();
          return;
        case 'if': case 'then': case 'elif': case 'else':
        case 'do': case 'while': case 'until': case '!': case 'time':
          // A command follows these.
          this.pos += reserved.length;
          if (reserved === 'time') this.skipTimeOptions();
          if (reserved === 'while' || reserved === 'until') this.enterLoop();
          this.skipBlanksAndNewlines();
          this.parseCommand(origin, fromPipe, terminators);
          return;
        case 'fi':
        case 'done':
          this.pos += reserved.length;
          if (reserved === 'done' && this.loopDepth > 0) this.loopDepth--;
          this.parseTrailingRedirects(-1);
          return;
        case '}':
          return;
      }
    }
    this.parseSimple(origin, fromPipe);
  }

  private parseSimple(origin: PartOrigin, fromPipe: boolean): void {
    const part: MutablePart = { words: [], assignments: [], redirects: [], start: this.pos, end: this.pos };
    const substitutionsBefore = this.shared.parts.length;
    for (;;) {
      this.skipBlanks();
      if (this.pos >= this.src.length) break;
      const c = this.peek();
      if (c === '\n') break;
      if (c === '#' && this.atWordStart()) {
        this.skipComment();
        break;
      }
      const redirect = this.tryRedirect();
      if (redirect) {
        part.redirects.push(redirect);
        part.end = this.pos;
        continue;
      }
      if (META.has(c!) && !(this.src.startsWith('<(', this.pos) || this.src.startsWith('>(', this.pos))) break;
      if (part.words.length === 0) {
        const assignment = this.tryAssignment();
        if (assignment) {
          part.assignments.push(assignment);
          part.end = this.pos;
          continue;
        }
        // `name () { … }`: a function definition.
        const fn = /^([A-Za-z_][\w.:-]*)[ \t]*\([ \t]*\)/.exec(this.src.slice(this.pos));
        if (fn) {
          this.parseFunction(false);
          return;
        }
      }
      const start = this.pos;
      const word = this.readWord();
      if (word === undefined || this.pos === start) break;
      part.words.push(word);
      part.end = this.pos;
    }
    const hasSubstitutions = this.shared.parts.length > substitutionsBefore;
    if (part.words.length === 0 && part.assignments.length === 0 && part.redirects.length === 0) {
      if (!hasSubstitutions && this.pos < this.src.length && !META.has(this.peek()!) && this.peek() !== '#') {
        this.uncertain(`unexpected "${this.peek()}" at character ${this.pos + 1}`);
        this.pos++;
      }
      return;
    }
    this.finishPart(part, origin, fromPipe);
  }

  private finishPart(part: MutablePart, origin: PartOrigin, fromPipe: boolean): void {
    const words = part.words;
    const program = words[0]?.text ?? '';
    const notes: string[] = [];
    const source = this.src.slice(part.start, part.end);
    const index = this.shared.parts.length;
    const cwd = this.cwd;
    this.shared.parts.push({
      index,
      program,
      args: words.slice(1).map((w) => w.text),
      words,
      assignments: part.assignments,
      redirects: part.redirects,
      source,
      origin,
      cwd,
      notes,
    });

    for (const r of part.redirects) this.recordRedirectWrite(r, index, cwd);

    if (words.length === 0) {
      // Assignments alone set shell variables for the rest of the line.
      for (const a of part.assignments) this.assign(a.name, a.value);
      return;
    }
    const first = words[0]!;
    if (first.dynamic || first.glob) {
      this.uncertain(`the program name ${show(first.raw)} is only known when the line runs`);
      return;
    }
    this.interpret(index, words, notes, fromPipe, part.redirects, source);
  }

  /** Program-specific knowledge: cd, wrappers, shells, eval, writers. */
  private interpret(index: number, words: readonly ShellWord[], notes: string[], fromPipe: boolean, redirects: readonly ShellRedirect[], source: string): void {
    const name = baseName(words[0]!.text);
    const args = words.slice(1);
    switch (name) {
      case 'cd':
      case 'pushd': {
        const target = args.find((a) => !a.text.startsWith('-') || a.text === '-');
        if (!target) this.cwd = this.vars.known.get('HOME') ?? null;
        else if (target.text === '-' || target.dynamic || target.glob) this.cwd = null;
        else this.cwd = joinPath(this.cwd, target.text);
        return;
      }
      case 'popd':
        this.cwd = null;
        return;
      case 'export':
      case 'declare':
      case 'typeset':
      case 'local':
      case 'readonly':
        for (const a of args) {
          const m = /^([A-Za-z_]\w*)=/.exec(a.text);
          if (m) this.assign(m[1]!, { ...a, text: a.text.slice(m[0].length) });
          if (m && name === 'export') this.vars.exported.add(m[1]!);
          else if (name === 'export' && /^[A-Za-z_]\w*$/.test(a.text)) this.vars.exported.add(a.text);
        }
        return;
      case 'unset':
      case 'read':
      case 'mapfile':
      case 'readarray':
      case 'getopts':
        for (const a of args) if (/^[A-Za-z_]\w*$/.test(a.text)) this.forget(a.text);
        return;
      case 'eval':
        this.uncertain(`eval runs a string as a command: ${show(source)}`);
        return;
      case 'source':
      case '.':
        this.uncertain(`${name} runs the commands in ${show(args[0]?.text ?? '(nothing)')} in this shell; they are not analysed`);
        return;
      case 'alias':
      case 'unalias':
        this.uncertain('alias definitions change what later commands mean');
        return;
      case 'shopt':
      case 'set':
        if (args.some((a) => /expand_aliases|extglob|-o|\+o/.test(a.text))) this.note(`${name} changes shell options; their effect on later commands is not analysed`);
        return;
      case 'trap':
        this.uncertain('trap runs a string as a command later');
        return;
      case 'exec':
      case 'command':
      case 'builtin':
      case 'nohup':
      case 'setsid':
      case 'unbuffer':
        this.unwrap(index, args.filter((_, i) => !(name === 'command' && i === 0 && /^-[pvV]+$/.test(args[0]!.text))), name);
        return;
      case 'env':
        this.unwrapEnv(index, args);
        return;
      case 'sudo':
      case 'doas':
        this.unwrap(index, skipOptions(args, new Set(['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U', '-T', '--user', '--group'])), name);
        return;
      case 'nice':
      case 'ionice':
      case 'stdbuf':
        this.unwrap(index, skipOptions(args, new Set(['-n', '-c', '--adjustment', '--class', '--classdata', '-i', '-o', '-e', '-p'])), name);
        return;
      case 'timeout':
        this.unwrap(index, skipOptions(args, new Set(['-s', '-k', '--signal', '--kill-after'])), name, 1);
        return;
      case 'flock':
        this.unwrap(index, skipOptions(args, new Set(['-w', '-E', '--timeout', '--conflict-exit-code'])), name, 1, true);
        return;
      case 'watch':
        this.unwrapString(index, skipOptions(args, new Set(['-n', '-d', '--interval', '--differences'])), name);
        return;
      case 'xargs':
        this.unwrap(index, skipOptions(args, new Set(['-I', '-i', '-n', '-P', '-d', '-E', '-e', '-L', '-l', '-s', '-a', '--arg-file', '--delimiter', '--max-args', '--max-procs', '--replace', '--max-lines', '--max-chars', '--eof'])), name, 0, false, 'xargs');
        this.note('xargs adds arguments read from its input; they are not known in advance');
        return;
      case 'find':
        this.interpretFind(index, args);
        return;
      case 'git':
        return;
    }
    if (SHELLS.has(name)) {
      this.interpretShell(index, args, fromPipe, redirects, name);
      return;
    }
    const inline = INLINE_CODE[name] ?? (/^python\d(\.\d+)?$/.test(name) ? ['-c'] : undefined);
    if (inline && args.some((a) => inline.includes(a.text) || inline.some((o) => o.startsWith('-') && o.length === 2 && a.text.startsWith(o) && a.text.length > 2 && !a.text.startsWith('--')))) {
      const msg = `${name} runs inline code; what it does is not analysed (the sandbox still confines it)`;
      notes.push(msg);
      this.note(msg);
    }
    this.recordWriterArgs(index, name, args);
    this.recordReaderArgs(index, name, args);
  }

  // ---- wrappers ----

  /** The wrapped command of `wrapper [options] cmd args…` becomes its own part. */
  private unwrap(index: number, rest: readonly ShellWord[], wrapper: string, skipLeading = 0, flockStyle = false, origin: PartOrigin = 'wrapped'): void {
    let words = rest.slice(skipLeading);
    if (flockStyle && words[0] && (words[0].text === '-c' || words[0].text === '--command')) {
      this.unwrapString(index, words.slice(1), wrapper);
      return;
    }
    if (words.length === 0) return;
    words = [...words];
    const parent = this.shared.parts[index]!;
    const sourceStart = parent.source.indexOf(words[0]!.raw);
    const part: ShellPart = {
      index: this.shared.parts.length,
      program: words[0]!.text,
      args: words.slice(1).map((w) => w.text),
      words,
      assignments: [],
      redirects: [],
      source: sourceStart >= 0 ? parent.source.slice(sourceStart) : words.map((w) => w.raw).join(' '),
      origin,
      cwd: parent.cwd,
      notes: [`run by ${wrapper}`],
    };
    this.shared.parts.push(part);
    const first = words[0]!;
    if (first.dynamic || first.glob) {
      this.uncertain(`the program ${wrapper} runs, ${show(first.raw)}, is only known when the line runs`);
      return;
    }
    if (origin === 'xargs' && WRITERS.has(baseName(first.text))) {
      this.uncertain(`xargs ${baseName(first.text)} changes files named by its input, which are not known in advance`);
    }
    this.interpret(part.index, words, part.notes as string[], false, [], part.source);
  }

  private unwrapEnv(index: number, args: readonly ShellWord[]): void {
    let i = 0;
    let cwd = this.shared.parts[index]!.cwd;
    for (; i < args.length; i++) {
      const t = args[i]!.text;
      if (t === '--') { i++; break; }
      if (t === '-S' || t.startsWith('--split-string')) {
        this.uncertain('env -S splits a string into a command; it is not analysed');
        return;
      }
      if (t === '-C' || t === '--chdir') {
        const dir = args[++i];
        cwd = dir && !dir.dynamic ? joinPath(cwd, dir.text) : null;
        continue;
      }
      if (t === '-u' || t === '--unset') { i++; continue; }
      if (t.startsWith('-')) continue;
      if (/^[A-Za-z_]\w*=/.test(t)) continue;
      break;
    }
    const saved = this.cwd;
    this.cwd = cwd;
    this.unwrap(index, args.slice(i), 'env');
    this.cwd = saved;
  }

  /** `watch 'cmd'`, `flock -c 'cmd'`: the words are joined and run by sh -c. */
  private unwrapString(index: number, words: readonly ShellWord[], wrapper: string): void {
    if (words.length === 0) return;
    if (words.some((w) => w.dynamic)) {
      this.uncertain(`${wrapper} runs a command string that is only known when the line runs`);
      return;
    }
    this.parseNested(words.map((w) => w.text).join(' '), 'shell-c', this.shared.parts[index]!.cwd);
  }

  private interpretShell(index: number, args: readonly ShellWord[], fromPipe: boolean, redirects: readonly ShellRedirect[], name: string): void {
    // bash [options] -c STRING [name [args]] | bash [options] FILE [args] | bash [-s] (reads stdin)
    let i = 0;
    let sawC = false;
    let readsStdin = false;
    for (; i < args.length; i++) {
      const t = args[i]!.text;
      if (t === '--' || t === '-') { i++; break; }
      if (t === '--rcfile' || t === '--init-file') { i++; continue; }
      if (/^[-+][a-zA-Z]+$/.test(t)) {
        if (t.startsWith('-') && t.includes('c')) sawC = true;
        if (t.startsWith('-') && t.includes('s')) readsStdin = true;
        // `-o pipefail`, `-euo pipefail`: the option name is the next word.
        if (/[oO]$/.test(t)) i++;
        continue;
      }
      if (t.startsWith('--')) continue;
      break;
    }
    const operand = args[i];
    if (sawC) {
      if (!operand) {
        this.uncertain(`${name} -c has no command string`);
        return;
      }
      if (operand.dynamic) {
        this.uncertain(`${name} -c runs ${show(operand.raw)}, a string only known when the line runs`);
        return;
      }
      this.parseNested(operand.text, 'shell-c', this.shared.parts[index]!.cwd);
      return;
    }
    if (operand && !readsStdin) {
      const msg = `${name} runs the script ${show(operand.text)}; its commands are not analysed (the sandbox still confines them)`;
      (this.shared.parts[index]!.notes as string[]).push(msg);
      this.note(msg);
      return;
    }
    // Commands come from stdin: a here-doc we can read is parsed, anything else is unknown.
    const hereDoc = redirects.find((r) => r.mode === 'here-doc' || r.mode === 'here-string');
    const waiters = hereDoc ? this.hereDocWaiters.get(hereDoc) : undefined;
    if (hereDoc?.mode === 'here-doc' && waiters) {
      const cwd = this.shared.parts[index]!.cwd;
      waiters.push((body) => {
        if (body === undefined) return; // already reported as not terminated
        if (hereDoc.target?.dynamic) this.uncertain(`${name} runs commands from a here-doc whose text is only known when the line runs`);
        else this.parseNested(body, 'shell-stdin', cwd);
      });
      return;
    }
    if (hereDoc?.mode === 'here-string' && hereDoc.target && !hereDoc.target.dynamic) {
      this.parseNested(hereDoc.target.text, 'shell-stdin', this.shared.parts[index]!.cwd);
      return;
    }
    const from = fromPipe ? 'a pipe' : redirects.some((r) => r.mode === 'read') ? 'a file' : hereDoc ? 'a here-doc it cannot read' : 'its input';
    this.uncertain(`${name} runs commands read from ${from}; they are not known in advance`);
  }

  private interpretFind(index: number, args: readonly ShellWord[]): void {
    for (let i = 0; i < args.length; i++) {
      const t = args[i]!.text;
      if (t === '-exec' || t === '-execdir' || t === '-ok' || t === '-okdir') {
        const cmd: ShellWord[] = [];
        let j = i + 1;
        for (; j < args.length && args[j]!.text !== ';' && args[j]!.text !== '+'; j++) {
          const a = args[j]!;
          // `{}` is replaced by each file found.
          cmd.push(a.text.includes('{}') ? { ...a, dynamic: true } : a);
        }
        i = j;
        this.unwrap(index, cmd, `find ${t}`, 0, false, 'find-exec');
      } else if (t === '-delete') {
        this.note('find -delete removes every file it matches');
      } else if ((t === '-fprint' || t === '-fprint0' || t === '-fprintf' || t === '-fls') && args[i + 1]) {
        this.recordWrite(args[i + 1]!, 'write', `find ${t}`, index);
      }
    }
  }

  // ---- writes ----

  private recordRead(word: ShellWord, via: string, part: number, cwd: string | null = part >= 0 && this.shared.parts[part] ? this.shared.parts[part]!.cwd : this.cwd): void {
    if (word.procSub || word.text === '-' || (!word.dynamic && isPseudoFile(word.text))) return;
    if (cwd === null && !word.text.startsWith('/')) return;
    this.shared.reads.push({ path: word.text, word, access: 'read', via, part, cwd });
  }

  /** Operands of programs that read the files they are given (their content reaches the output or the network). */
  private recordReaderArgs(index: number, name: string, args: readonly ShellWord[]): void {
    const r = (w: ShellWord | undefined) => { if (w) this.recordRead(w, name, index); };
    const operands = (valued: ReadonlySet<string>, skipFirst = false): ShellWord[] => {
      const out: ShellWord[] = [];
      let endOfOptions = false;
      for (let i = 0; i < args.length; i++) {
        const t = args[i]!.text;
        if (!endOfOptions && t === '--') { endOfOptions = true; continue; }
        if (!endOfOptions && t.startsWith('-') && t !== '-') {
          if (valued.has(t)) i++;
          continue;
        }
        out.push(args[i]!);
      }
      return skipFirst ? out.slice(1) : out;
    };
    const has = (...opts: string[]) => args.some((a) => opts.includes(a.text) || opts.some((o) => o.startsWith('--') && a.text.startsWith(`${o}=`)));
    switch (name) {
      case 'cat': case 'tac': case 'nl': case 'less': case 'more': case 'bat': case 'batcat': case 'base64': case 'base32':
      case 'od': case 'hexdump': case 'strings': case 'wc': case 'md5sum': case 'sha1sum': case 'sha256sum':
      case 'sha512sum': case 'cksum': case 'fold': case 'fmt': case 'rev': case 'column': case 'paste': case 'diff': case 'cmp':
      case 'comm': case 'expand': case 'unexpand': {
        const valued: Readonly<Record<string, readonly string[]>> = {
          od: ['-N', '-j', '-t', '-A', '-w'], base64: ['-w'], base32: ['-w'], fold: ['-w'], fmt: ['-w', '-p', '-g'],
          column: ['-s', '-c', '-o', '-n', '-N', '-t'], paste: ['-d'], diff: ['-I', '-x', '-X', '-U', '-C', '-F'], expand: ['-t'], unexpand: ['-t'],
          strings: ['-n', '-t', '-e'], head: [], nl: ['-b', '-d', '-f', '-h', '-i', '-n', '-s', '-v', '-w'],
        };
        for (const a of operands(new Set(valued[name] ?? []))) r(a);
        return;
      }
      case 'xxd': case 'uniq':
        // The second operand is an output file.
        r(operands(new Set(['-c', '-g', '-l', '-s', '-o', '-f', '-w']))[0]);
        return;
      case 'head': case 'tail':
        for (const a of operands(new Set(['-n', '-c', '--lines', '--bytes', '-s', '--pid']))) r(a);
        return;
      case 'sort':
        for (const a of operands(new Set(['-k', '-t', '-o', '-S', '-T', '--key', '--field-separator', '--output', '--buffer-size', '--temporary-directory']))) r(a);
        return;
      case 'cut':
        for (const a of operands(new Set(['-d', '-f', '-b', '-c', '--delimiter', '--fields', '--bytes', '--characters']))) r(a);
        return;
      case 'grep': case 'egrep': case 'fgrep': case 'rg': case 'ag': case 'zgrep': {
        const patternGiven = has('-e', '-f', '--regexp', '--file');
        for (const a of operands(new Set(['-e', '-f', '-m', '-A', '-B', '-C', '-g', '-t', '--regexp', '--file', '--max-count', '--glob', '--type', '--include', '--exclude']), !patternGiven)) r(a);
        return;
      }
      case 'jq': case 'yq':
        for (const a of operands(new Set(['--arg', '--argjson', '--slurpfile', '--rawfile', '-f', '--from-file', '--indent']), !has('-f', '--from-file'))) r(a);
        return;
      case 'awk': case 'gawk': case 'mawk':
        for (const a of operands(new Set(['-F', '-v', '-f', '--field-separator', '--assign', '--file']), !has('-f', '--file'))) r(a);
        return;
      case 'sed':
        for (const a of operands(new Set(['-e', '-f', '--expression', '--file', '-l', '--line-length']), !has('-e', '-f', '--expression', '--file'))) r(a);
        return;
      case 'cp': case 'install': {
        const ops = operands(new Set(['-t', '-S', '--target-directory', '--suffix', '-m', '--mode', '-o', '--owner', '-g', '--group', '--backup']));
        for (const a of has('-t', '--target-directory') ? ops : ops.slice(0, -1)) r(a);
        return;
      }
      case 'curl':
        for (let i = 0; i < args.length; i++) {
          const t = args[i]!.text;
          const next = args[i + 1];
          if ((t === '-T' || t === '--upload-file') && next) r(next);
          if ((t === '-d' || t === '--data' || t === '--data-binary' || t === '--data-raw' || t === '--data-urlencode' || t === '--json') && next?.text.startsWith('@')) r({ ...next, text: next.text.slice(1) });
          if ((t === '-F' || t === '--form') && next) {
            const at = next.text.indexOf('=@');
            if (at !== -1) r({ ...next, text: next.text.slice(at + 2).split(';')[0]! });
          }
        }
        return;
      case 'wget':
        for (const a of args) if (a.text.startsWith('--post-file=') || a.text.startsWith('--body-file=')) r({ ...a, text: a.text.slice(a.text.indexOf('=') + 1) });
        return;
    }
  }

  private recordRedirectWrite(r: ShellRedirect, index: number, cwd: string | null): void {
    if ((r.mode === 'read' || r.mode === 'read-write') && r.target) this.recordRead(r.target, r.op, index, cwd);
    if ((r.mode === 'write' || r.mode === 'append' || r.mode === 'read-write') && r.target) {
      this.recordWrite(r.target, r.mode === 'append' ? 'write' : 'write', r.op, index, cwd);
    }
  }

  private recordWrite(word: ShellWord, access: PathAccessKind, via: string, part: number, cwd: string | null = part >= 0 && this.shared.parts[part] ? this.shared.parts[part]!.cwd : this.cwd): void {
    if (word.procSub) return;
    if (!word.dynamic && isPseudoFile(word.text)) return;
    const verb = access === 'delete' ? 'deletes' : 'writes to';
    if (word.dynamic) {
      this.uncertain(`${via} ${verb} ${show(word.raw)}, a path only known when the line runs`);
    } else if (word.brace || (word.glob && hasGlob(dirName(word.raw)))) {
      this.uncertain(`${via} ${verb} ${show(word.raw)}, which the shell expands to paths not known in advance`);
    }
    if (cwd === null && !word.text.startsWith('/')) {
      this.uncertain(`${via} ${verb} ${show(word.raw)} relative to a directory a cd made unknown`);
    }
    this.shared.writes.push({ path: word.text, word, access, via, part, cwd });
  }

  private recordWriterArgs(index: number, name: string, args: readonly ShellWord[]): void {
    const operands = (valued: ReadonlySet<string>): ShellWord[] => {
      const out: ShellWord[] = [];
      let endOfOptions = false;
      for (let i = 0; i < args.length; i++) {
        const t = args[i]!.text;
        if (!endOfOptions && t === '--') { endOfOptions = true; continue; }
        if (!endOfOptions && t.startsWith('-') && t !== '-') {
          if (valued.has(t)) i++;
          continue;
        }
        out.push(args[i]!);
      }
      return out;
    };
    const optionValue = (short: string, long: string): ShellWord | undefined => {
      for (let i = 0; i < args.length; i++) {
        const t = args[i]!.text;
        if (t === short || t === long) return args[i + 1];
        if (t.startsWith(`${long}=`)) return { ...args[i]!, text: t.slice(long.length + 1) };
        if (short.length === 2 && t.startsWith(short) && !t.startsWith('--') && t.length > 2) return { ...args[i]!, text: t.slice(2) };
      }
      return undefined;
    };
    const w = (word: ShellWord | undefined, access: PathAccessKind = 'write') => { if (word) this.recordWrite(word, access, name, index); };
    switch (name) {
      case 'tee':
        for (const a of operands(new Set())) w(a);
        return;
      case 'touch':
        for (const a of operands(new Set(['-d', '-t', '-r', '--date', '--reference']))) w(a);
        return;
      case 'mkdir':
        for (const a of operands(new Set(['-m', '--mode']))) w(a);
        return;
      case 'rm':
      case 'rmdir':
      case 'unlink':
        for (const a of operands(new Set())) w(a, 'delete');
        return;
      case 'shred':
        for (const a of operands(new Set(['-n', '-s', '--iterations', '--size', '--random-source']))) w(a);
        return;
      case 'truncate':
        for (const a of operands(new Set(['-s', '-r', '--size', '--reference']))) w(a);
        return;
      case 'chmod':
      case 'chown':
      case 'chgrp':
        for (const a of operands(new Set(['--reference'])).slice(1)) w(a);
        return;
      case 'cp':
      case 'mv':
      case 'ln':
      case 'install': {
        const valued = new Set(['-t', '-S', '--target-directory', '--suffix', '-m', '--mode', '-o', '--owner', '-g', '--group', '--backup']);
        const ops = operands(valued);
        const targetDir = optionValue('-t', '--target-directory');
        if (targetDir) {
          w(targetDir);
          if (name === 'mv') for (const a of ops) w(a, 'delete');
          return;
        }
        if (name === 'ln' && ops.length === 1) {
          w({ ...ops[0]!, text: baseName(ops[0]!.text) });
          return;
        }
        if (name === 'install' && args.some((a) => a.text === '-d' || a.text === '--directory')) {
          for (const a of ops) w(a);
          return;
        }
        if (ops.length >= 2) {
          w(ops[ops.length - 1]);
          if (name === 'mv') for (const a of ops.slice(0, -1)) w(a, 'delete');
        }
        return;
      }
      case 'dd':
        for (const a of args) if (a.text.startsWith('of=')) w({ ...a, text: a.text.slice(3) });
        return;
      case 'sed': {
        if (!args.some((a) => /^-[a-zA-Z]*i/.test(a.text) && !a.text.startsWith('--') || a.text.startsWith('--in-place'))) return;
        const hasScriptOption = args.some((a) => a.text === '-e' || a.text === '-f' || a.text === '--expression' || a.text === '--file');
        const ops = operands(new Set(['-e', '-f', '--expression', '--file', '-l', '--line-length']));
        for (const a of hasScriptOption ? ops : ops.slice(1)) w(a);
        return;
      }
      case 'curl':
        for (let i = 0; i < args.length; i++) {
          const t = args[i]!.text;
          if (t === '-o' || t === '--output') w(args[i + 1]);
          else if (t.startsWith('--output=')) w({ ...args[i]!, text: t.slice(9) });
        }
        return;
      case 'wget': {
        const out = optionValue('-O', '--output-document');
        if (out && out.text !== '-') w(out);
        return;
      }
    }
  }

  // ---- compound commands ----

  private parseFor(keyword: string): void {
    this.pos += keyword.length;
    this.skipBlanks();
    if (this.src.startsWith('((', this.pos)) {
      this.skipArithmetic(this.pos + 2);
      return;
    }
    const name = /^[A-Za-z_]\w*/.exec(this.src.slice(this.pos));
    if (!name) {
      this.uncertain(`${keyword} without a variable name`);
      return;
    }
    this.pos += name[0].length;
    this.enterLoop();
    this.forget(name[0]);
    this.skipBlanksAndNewlines();
    if (this.peekReservedWord() === 'in') {
      this.pos += 2;
      for (;;) {
        this.skipBlanks();
        const c = this.peek();
        if (c === undefined || c === ';' || c === '\n') break;
        const start = this.pos;
        this.readWord();
        if (this.pos === start) break;
      }
    }
    // `do … done` follows as ordinary reserved words.
  }

  private parseCase(origin: PartOrigin): void {
    this.pos += 4;
    this.skipBlanks();
    this.readWord();
    this.skipBlanksAndNewlines();
    if (this.peekReservedWord() !== 'in') {
      this.uncertain('case without "in"');
      return;
    }
    this.pos += 2;
    for (;;) {
      this.skipBlanksAndNewlines();
      if (this.pos >= this.src.length) {
        this.uncertain('case without "esac"');
        return;
      }
      if (this.peekReservedWord() === 'esac') {
        this.pos += 4;
        return;
      }
      if (this.peek() === '(') this.pos++;
      // Patterns up to ')'.
      for (;;) {
        this.skipBlanks();
        const c = this.peek();
        if (c === undefined) { this.uncertain('case pattern without ")"'); return; }
        if (c === ')') { this.pos++; break; }
        if (c === '|') { this.pos++; continue; }
        const start = this.pos;
        this.readWord();
        if (this.pos === start) { this.uncertain(`unexpected "${c}" in a case pattern`); return; }
      }
      this.parseList(new Set([';;', ';&', ';;&', 'esac']), origin);
      const op = this.peekOperator();
      if (op === ';;' || op === ';&' || op === ';;&') this.pos += op.length;
    }
  }

  private parseFunction(withKeyword: boolean): void {
    if (withKeyword) {
      this.pos += 'function'.length;
      this.skipBlanks();
    }
    const m = /^([^\s();&|<>]+)[ \t]*(\([ \t]*\))?/.exec(this.src.slice(this.pos));
    const name = m?.[1] ?? '?';
    this.pos += m?.[0].length ?? 0;
    this.uncertain(`the line defines a shell function "${name}"; calls to it are not analysed`);
    this.skipBlanksAndNewlines();
    this.scoped(() => this.parseCommand('function', false, new Set()));
  }

  private parseDoubleBracket(): void {
    this.pos += 2;
    for (;;) {
      this.skipBlanksAndNewlines();
      if (this.pos >= this.src.length) {
        this.uncertain('[[ without ]]');
        return;
      }
      if (this.src.startsWith(']]', this.pos) && this.isWordEnd(this.pos + 2)) {
        this.pos += 2;
        this.parseTrailingRedirects(-1);
        return;
      }
      const c = this.peek()!;
      if ('()<>&|!'.includes(c)) { this.pos++; continue; }
      const start = this.pos;
      this.readWord();
      if (this.pos === start) this.pos++;
    }
  }

  private skipTimeOptions(): void {
    this.skipBlanks();
    if (this.src.startsWith('-p', this.pos) && this.isWordEnd(this.pos + 2)) this.pos += 2;
  }

  /** Redirections after `)`, `}`, `]]`, `))`: they apply to everything inside. */
  private parseTrailingRedirects(part: number): void {
    for (;;) {
      this.skipBlanks();
      const r = this.tryRedirect();
      if (!r) return;
      this.recordRedirectWrite(r, part, this.cwd);
    }
  }

  private skipArithmetic(from: number): void {
    let depth = 2;
    let i = from;
    for (; i < this.src.length && depth > 0; i++) {
      if (this.src[i] === '(') depth++;
      else if (this.src[i] === ')') depth--;
    }
    if (depth > 0) this.uncertain('(( without ))');
    this.pos = i;
  }

  // ---- redirections ----

  private tryRedirect(): ShellRedirect | undefined {
    const m = /^(\d+|\{[A-Za-z_]\w*\})?(&>>|&>|>>|>\||>&|<<<|<<-|<<|<&|<>|>|<)/.exec(this.src.slice(this.pos, this.pos + 24));
    if (!m) return undefined;
    // `<(` and `>(` are process substitutions (words), not redirections.
    if (!m[1] && (m[2] === '<' || m[2] === '>') && this.src[this.pos + m[0].length] === '(') return undefined;
    const op = m[2]!;
    const fdText = m[1];
    const fd: number | 'all' = op.startsWith('&') ? 'all' : fdText !== undefined && /^\d+$/.test(fdText) ? Number(fdText) : op.startsWith('<') ? 0 : 1;
    this.pos += m[0].length;
    this.skipBlanks();
    if (op === '<<' || op === '<<-') return this.readHereDocRedirect(op, fd);
    const start = this.pos;
    const target = this.readWord();
    if (!target || this.pos === start) {
      this.uncertain(`redirection ${op} without a target`);
      return { op, fd, mode: 'dup' };
    }
    let mode: RedirectMode;
    switch (op) {
      case '>': case '>|': case '&>': mode = 'write'; break;
      case '>>': case '&>>': mode = 'append'; break;
      case '<': mode = 'read'; break;
      case '<>': mode = 'read-write'; break;
      case '<<<': mode = 'here-string'; break;
      case '>&':
        // `>&2`, `>&-` duplicate or close; `>&file` writes to file (bash).
        mode = /^(\d+-?|-)$/.test(target.text) || target.dynamic ? 'dup' : 'write';
        break;
      default: mode = 'dup';
    }
    return { op, fd, mode, target };
  }

  private readHereDocRedirect(op: string, fd: number | 'all'): ShellRedirect {
    const start = this.pos;
    const word = this.readWord();
    if (!word || this.pos === start) {
      this.uncertain(`here-doc ${op} without a delimiter`);
      return { op, fd, mode: 'here-doc' };
    }
    const quoted = /['"\\]/.test(word.raw);
    const redirect: { op: string; fd: number | 'all'; mode: RedirectMode; target: ShellWord; body?: string } = {
      op, fd, mode: 'here-doc',
      target: { ...word, dynamic: false },
    };
    const waiters: ((body: string | undefined) => void)[] = [];
    this.hereDocWaiters.set(redirect, waiters);
    this.pendingHereDocs.push({
      delimiter: word.text,
      quoted,
      stripTabs: op === '<<-',
      set: (body) => {
        if (body !== undefined) {
          redirect.body = body;
          if (!quoted && /[$`]/.test(body)) {
            // The body is expanded: substitutions in it run.
            const bodyWord = this.expandText(body);
            redirect.target = { ...redirect.target, dynamic: bodyWord.dynamic };
          }
        }
        for (const w of waiters) w(body);
      },
    });
    return redirect;
  }

  /** Reads the bodies of pending here-docs from the lines after the current newline. */
  private readHereDocs(): void {
    const docs = this.pendingHereDocs;
    this.pendingHereDocs = [];
    for (const doc of docs) {
      const lines: string[] = [];
      let found = false;
      while (this.pos < this.src.length) {
        const nl = this.src.indexOf('\n', this.pos);
        const end = nl === -1 ? this.src.length : nl;
        let text = this.src.slice(this.pos, end);
        this.pos = nl === -1 ? this.src.length : nl + 1;
        if (doc.stripTabs) text = text.replace(/^\t+/, '');
        if (text === doc.delimiter) {
          found = true;
          break;
        }
        lines.push(text);
      }
      if (!found) {
        this.uncertain(`the here-doc ending with "${doc.delimiter}" is not terminated`);
        doc.set(undefined);
      } else {
        doc.set(lines.length > 0 ? `${lines.join('\n')}\n` : '');
      }
    }
  }

  // ---- words ----

  private tryAssignment(): { name: string; value: ShellWord } | undefined {
    const m = /^([A-Za-z_]\w*)(\[[^\]]*\])?\+?=/.exec(this.src.slice(this.pos));
    if (!m) return undefined;
    this.pos += m[0].length;
    const c = this.peek();
    if (c === '(') {
      // Array assignment: `a=(x y z)`.
      this.pos++;
      for (;;) {
        this.skipBlanksAndNewlines();
        if (this.peek() === ')' || this.pos >= this.src.length) break;
        const start = this.pos;
        this.readWord();
        if (this.pos === start) break;
      }
      this.expect(')', 'an array assignment');
      return { name: m[1]!, value: { text: '', raw: '', dynamic: true, glob: false, brace: false, procSub: false } };
    }
    if (c === undefined || META.has(c)) {
      return { name: m[1]!, value: { text: '', raw: '', dynamic: false, glob: false, brace: false, procSub: false } };
    }
    const value = this.readWord(true) ?? { text: '', raw: '', dynamic: false, glob: false, brace: false, procSub: false };
    return { name: m[1]!, value: m[2] || m[0].includes('+=') ? { ...value, dynamic: true } : value };
  }

  private assign(name: string, value: ShellWord): void {
    if (value.dynamic || this.loopDepth > 0) this.forget(name);
    else this.vars.known.set(name, value.text);
  }

  private forget(name: string): void {
    if (this.loopDepth > 0 && this.readInLoop.has(name)) {
      this.uncertain(`the variable ${name} is read and changed inside a loop, so its value differs between rounds`);
    }
    this.vars.known.delete(name);
  }

  private lookup(name: string): string | undefined {
    const v = this.vars.known.get(name);
    if (v !== undefined && this.loopDepth > 0) this.readInLoop.add(name);
    return v;
  }

  private enterLoop(): void {
    if (this.loopDepth === 0) this.readInLoop.clear();
    this.loopDepth++;
  }

  /** Runs `fn` with a copy of the variables: a subshell's assignments stay inside it. */
  private scoped(fn: () => void): void {
    if (!this.enter()) return;
    const savedVars = this.vars;
    const savedCwd = this.cwd;
    this.vars = copyVars(savedVars);
    try {
      fn();
    } finally {
      this.vars = savedVars;
      this.cwd = savedCwd;
      this.nest--;
    }
  }

  /** One level deeper; past the limit the rest of the line is given up on (uncertain). */
  private enter(): boolean {
    if (this.depth + this.nest >= MAX_DEPTH) {
      this.uncertain(`the line nests commands more than ${MAX_DEPTH} deep`);
      this.pos = this.src.length;
      return false;
    }
    this.nest++;
    return true;
  }

  /** Reads one word (stops at a metacharacter outside quotes). */
  private readWord(inAssignment = false): ShellWord | undefined {
    const start = this.pos;
    let text = '';
    let dynamic = false;
    let glob = false;
    let brace = false;
    let procSub = false;
    let first = true;
    while (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      if ((c === '<' || c === '>') && this.src[this.pos + 1] === '(' ) {
        const kind = c;
        this.pos += 2;
        this.parseSubstitution('process-substitution', `${kind}(`);
        text += `${kind}(…)`;
        dynamic = true;
        procSub = true;
        first = false;
        continue;
      }
      if (META.has(c)) break;
      if (c === '\\') {
        const next = this.src[this.pos + 1];
        if (next === '\n') { this.pos += 2; continue; }
        if (next === undefined) { this.pos++; break; }
        text += next;
        this.pos += 2;
        first = false;
        continue;
      }
      if (c === "'") {
        const end = this.src.indexOf("'", this.pos + 1);
        if (end === -1) {
          this.uncertain('a single quote is not closed');
          text += this.src.slice(this.pos + 1);
          this.pos = this.src.length;
          dynamic = true;
          break;
        }
        text += this.src.slice(this.pos + 1, end);
        this.pos = end + 1;
        first = false;
        continue;
      }
      if (c === '"') {
        const r = this.readDoubleQuoted();
        text += r.text;
        dynamic ||= r.dynamic;
        first = false;
        continue;
      }
      if (c === '$') {
        const r = this.readDollar(false);
        text += r.text;
        dynamic ||= r.dynamic;
        first = false;
        continue;
      }
      if (c === '`') {
        this.readBackticks();
        text += '`…`';
        dynamic = true;
        first = false;
        continue;
      }
      if (c === '~' && (first || (inAssignment && (text.endsWith(':') || text === '')))) {
        const m = /^~([A-Za-z0-9_.-]*)/.exec(this.src.slice(this.pos))!;
        const after = this.src[this.pos + m[0].length];
        if (after === undefined || after === '/' || META.has(after) || (inAssignment && after === ':')) {
          const home = m[1] === '' ? this.vars.known.get('HOME') : undefined;
          if (home !== undefined) text += home;
          else { text += m[0]; dynamic = true; }
          this.pos += m[0].length;
          first = false;
          continue;
        }
      }
      if (c === '*' || c === '?') glob = true;
      if (c === '[' && /^\[[^\s;&|<>()]*\]/.test(this.src.slice(this.pos))) glob = true;
      if (c === '{' && !inAssignment) {
        const close = this.src.indexOf('}', this.pos);
        const inner = close === -1 ? '' : this.src.slice(this.pos + 1, close);
        if (close !== -1 && !/[\s;&|<>()]/.test(inner) && (inner.includes(',') || /\.\./.test(inner))) {
          brace = true;
          glob = true;
        }
      }
      text += c;
      this.pos++;
      first = false;
    }
    if (this.pos === start) return undefined;
    return { text, raw: this.src.slice(start, this.pos), dynamic, glob, brace, procSub };
  }

  private readDoubleQuoted(): { text: string; dynamic: boolean } {
    this.pos++;
    let text = '';
    let dynamic = false;
    while (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      if (c === '"') {
        this.pos++;
        return { text, dynamic };
      }
      if (c === '\\') {
        const next = this.src[this.pos + 1];
        if (next === '\n') { this.pos += 2; continue; }
        if (next !== undefined && '$`"\\'.includes(next)) {
          text += next;
          this.pos += 2;
          continue;
        }
        text += c;
        this.pos++;
        continue;
      }
      if (c === '$') {
        const r = this.readDollar(true);
        text += r.text;
        dynamic ||= r.dynamic;
        continue;
      }
      if (c === '`') {
        this.readBackticks();
        text += '`…`';
        dynamic = true;
        continue;
      }
      text += c;
      this.pos++;
    }
    this.uncertain('a double quote is not closed');
    return { text, dynamic: true };
  }

  /** `$…` at this.pos. */
  private readDollar(inDoubleQuotes: boolean): { text: string; dynamic: boolean } {
    const next = this.src[this.pos + 1];
    if (next === '(') {
      if (this.src[this.pos + 2] === '(') {
        const start = this.pos;
        this.skipArithmetic(this.pos + 3);
        return { text: this.src.slice(start, this.pos), dynamic: true };
      }
      this.pos += 2;
      this.parseSubstitution('substitution', '$(');
      return { text: '$(…)', dynamic: true };
    }
    if (next === '{') {
      const close = this.findBraceEnd(this.pos + 2);
      if (close === -1) {
        this.uncertain('${ without }');
        this.pos = this.src.length;
        return { text: '${', dynamic: true };
      }
      const inner = this.src.slice(this.pos + 2, close);
      this.pos = close + 1;
      const value = /^[A-Za-z_]\w*$/.test(inner) ? this.lookup(inner) : undefined;
      if (value !== undefined) return { text: value, dynamic: false };
      if (/\$\(|`/.test(inner)) this.parseNested(inner.replace(/^[^$`]*/, ''), 'substitution', this.cwd);
      return { text: `\${${inner}}`, dynamic: true };
    }
    if (next === "'" && !inDoubleQuotes) {
      const r = this.readAnsiC();
      return { text: r, dynamic: false };
    }
    if (next === '"' && !inDoubleQuotes) {
      this.pos++;
      return this.readDoubleQuoted();
    }
    const name = /^([A-Za-z_]\w*|[0-9@*#?$!-])/.exec(this.src.slice(this.pos + 1));
    if (!name) {
      this.pos++;
      return { text: '$', dynamic: false };
    }
    this.pos += 1 + name[0].length;
    const v = name[0];
    const value = /^[A-Za-z_]/.test(v) ? this.lookup(v) : undefined;
    if (value !== undefined) return { text: value, dynamic: false };
    return { text: `$${v}`, dynamic: true };
  }

  private readAnsiC(): string {
    this.pos += 2;
    let out = '';
    while (this.pos < this.src.length) {
      const c = this.src[this.pos]!;
      if (c === "'") {
        this.pos++;
        return out;
      }
      if (c === '\\') {
        const n = this.src[this.pos + 1] ?? '';
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };
        if (n in simple) {
          out += simple[n];
          this.pos += 2;
          continue;
        }
        const hex = /^x([0-9a-fA-F]{1,2})/.exec(this.src.slice(this.pos + 1));
        if (hex) {
          out += String.fromCharCode(parseInt(hex[1]!, 16));
          this.pos += 1 + hex[0].length;
          continue;
        }
        const oct = /^([0-7]{1,3})/.exec(this.src.slice(this.pos + 1));
        if (oct) {
          out += String.fromCharCode(parseInt(oct[1]!, 8));
          this.pos += 1 + oct[0].length;
          continue;
        }
        const uni = /^[uU]([0-9a-fA-F]{1,8})/.exec(this.src.slice(this.pos + 1));
        if (uni) {
          const cp = parseInt(uni[1]!, 16);
          out += cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
          this.pos += 1 + uni[0].length;
          continue;
        }
        out += n;
        this.pos += 2;
        continue;
      }
      out += c;
      this.pos++;
    }
    this.uncertain("a $'…' quote is not closed");
    return out;
  }

  private findBraceEnd(from: number): number {
    let depth = 1;
    for (let i = from; i < this.src.length; i++) {
      const c = this.src[i];
      if (c === '\\') { i++; continue; }
      if (c === '{') depth++;
      else if (c === '}' && --depth === 0) return i;
    }
    return -1;
  }

  /** After `$(` or `<(`/`>(`: parses the inner list up to the matching `)`. */
  private parseSubstitution(origin: PartOrigin, opener: string): void {
    this.scoped(() => this.parseList(new Set([')']), origin));
    if (this.peek() === ')') this.pos++;
    else this.uncertain(`${opener}…) is not closed`);
  }

  private readBackticks(): void {
    let i = this.pos + 1;
    let inner = '';
    for (; i < this.src.length; i++) {
      const c = this.src[i]!;
      if (c === '\\' && i + 1 < this.src.length) {
        const n = this.src[i + 1]!;
        inner += '$`\\'.includes(n) ? n : c + n;
        i++;
        continue;
      }
      if (c === '`') break;
      inner += c;
    }
    if (i >= this.src.length) {
      this.uncertain('a backtick substitution is not closed');
      this.pos = this.src.length;
    } else {
      this.pos = i + 1;
    }
    this.parseNested(inner, 'substitution', this.cwd);
  }

  /** Parses a string that the shell will run (bash -c, backticks, here-doc to a shell). */
  private parseNested(text: string, origin: PartOrigin, cwd: string | null): void {
    const child = new Parser(text, this.shared, copyVars(this.vars, true), cwd, origin, this.depth + this.nest + 1);
    child.parseTop();
  }

  /** Text with `$(…)`/backticks in it (an unquoted here-doc body): parses the substitutions. */
  private expandText(body: string): { dynamic: boolean } {
    let dynamic = false;
    const child = new Parser(body, this.shared, copyVars(this.vars), this.cwd, 'substitution', this.depth + 1);
    while (child.pos < body.length) {
      const c = body[child.pos];
      if (c === '\\') { child.pos += 2; continue; }
      if (c === '$') {
        const r = child.readDollar(true);
        dynamic ||= r.dynamic;
        continue;
      }
      if (c === '`') {
        child.readBackticks();
        dynamic = true;
        continue;
      }
      child.pos++;
    }
    return { dynamic };
  }

  // ---- lexing helpers ----

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private peekOperator(): string | undefined {
    const s = this.src.slice(this.pos, this.pos + 3);
    for (const op of [';;&', ';;', ';&', '&&', '||', '|&', ';', '&', '|', '(', ')']) {
      if (s.startsWith(op)) {
        // `&>` is a redirection, not `&`.
        if (op === '&' && s[1] === '>') return undefined;
        return op;
      }
    }
    return undefined;
  }

  /** A reserved word at this position (only meaningful where a command starts). */
  private peekReservedWord(): string | undefined {
    const m = /^(\[\[|\{|\}|!|[a-z]+)/.exec(this.src.slice(this.pos, this.pos + 10));
    if (!m) return undefined;
    const w = m[1]!;
    if (!this.isWordEnd(this.pos + w.length)) return undefined;
    if (RESERVED_SKIP.has(w) || ['for', 'select', 'case', 'esac', 'in', 'function', 'coproc', '[['].includes(w)) return w;
    return undefined;
  }

  private isWordEnd(i: number): boolean {
    const c = this.src[i];
    return c === undefined || c === ' ' || c === '\t' || c === '\n' || c === ';' || c === '&' || c === '|' || c === ')' || c === '(' || c === '<' || c === '>';
  }

  private atWordStart(): boolean {
    const prev = this.src[this.pos - 1];
    return prev === undefined || META.has(prev);
  }

  private skipBlanks(): void {
    for (;;) {
      const c = this.src[this.pos];
      if (c === ' ' || c === '\t') { this.pos++; continue; }
      if (c === '\\' && this.src[this.pos + 1] === '\n') { this.pos += 2; continue; }
      return;
    }
  }

  private skipBlanksAndNewlines(): void {
    for (;;) {
      this.skipBlanks();
      const c = this.src[this.pos];
      if (c === '\n') {
        this.pos++;
        if (this.pendingHereDocs.length > 0) this.readHereDocs();
        continue;
      }
      if (c === '#' && this.atWordStart()) { this.skipComment(); continue; }
      return;
    }
  }

  private skipComment(): void {
    const nl = this.src.indexOf('\n', this.pos);
    this.pos = nl === -1 ? this.src.length : nl;
  }

  private expect(ch: string, what: string): void {
    this.skipBlanksAndNewlines();
    if (this.peek() === ch) this.pos++;
    else this.uncertain(`${what} is not closed with "${ch}"`);
  }

  private expectWord(word: string, what: string): void {
    this.skipBlanksAndNewlines();
    if (this.src.startsWith(word, this.pos)) this.pos += word.length;
    else this.uncertain(`${what} is not closed with "${word}"`);
  }

  private uncertain(reason: string): void {
    this.shared.uncertain.push(reason);
  }

  private note(text: string): void {
    this.shared.notes.push(text);
  }
}

// ---- small pure helpers (no node:path in src/common) ----

function skipOptions(args: readonly ShellWord[], valued: ReadonlySet<string>): ShellWord[] {
  let i = 0;
  for (; i < args.length; i++) {
    const t = args[i]!.text;
    if (t === '--') { i++; break; }
    if (!t.startsWith('-') || t === '-') break;
    if (valued.has(t)) i++;
  }
  return args.slice(i);
}

export function baseName(p: string): string {
  const trimmed = p.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

function dirName(p: string): string {
  const i = p.lastIndexOf('/');
  return i === -1 ? '' : p.slice(0, i);
}

function hasGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

/** Joins a tracked directory with a cd target; null stays null (unknown). */
export function joinPath(base: string | null, target: string): string | null {
  if (target.startsWith('/')) return normalizePath(target);
  if (base === null) return null;
  return normalizePath(base === '' ? target : `${base}/${target}`);
}

/** Lexical normalisation of a '/'-separated path ('' stays ''; leading '..' are kept). */
export function normalizePath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  return abs ? `/${joined}` : joined;
}

function show(s: string): string {
  const one = s.replace(/\s+/g, ' ');
  return `\`${one.length > 80 ? `${one.slice(0, 77)}...` : one}\``;
}

function dedupe(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
