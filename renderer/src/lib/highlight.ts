// A small line-at-a-time syntax colourer for diff previews. It knows comments,
// strings, numbers and keywords for the common language families; it does not
// parse, so a string or comment spanning lines is coloured only on its first
// line. Output is text tokens rendered as text: never HTML.

export type TokenType = 'kw' | 'str' | 'com' | 'num' | 'plain';
export interface Token {
  readonly type: TokenType;
  readonly text: string;
}

interface Lang {
  readonly keywords: ReadonlySet<string>;
  readonly lineComment?: string;
  readonly blockComment?: readonly [string, string];
  readonly quotes: string;
}

const words = (s: string) => new Set(s.split(/\s+/).filter(Boolean));
const C_LIKE = words(`
  abstract as async await break case catch class const continue debugger declare default delete do else enum export extends false
  finally for from function get if implements import in instanceof interface let new null of package private protected public
  readonly return set static super switch this throw true try type typeof undefined var void while with yield
  fn impl mut pub use mod struct trait match loop where crate self Self go func chan defer map range select var
  int long char float double bool boolean string byte short unsigned signed sizeof include define`);
const PYTHON = words(`and as assert async await break class continue def del elif else except False finally for from global if import in is
  lambda None nonlocal not or pass raise return True try while with yield self`);
const SHELL = words(`if then else elif fi for while do done case esac in function return local export readonly set unset echo exit`);
const CSS = words(`important inherit initial unset none auto`);

const LANGS: Readonly<Record<string, Lang>> = {
  c: { keywords: C_LIKE, lineComment: '//', blockComment: ['/*', '*/'], quotes: `"'\`` },
  py: { keywords: PYTHON, lineComment: '#', quotes: `"'` },
  sh: { keywords: SHELL, lineComment: '#', quotes: `"'` },
  css: { keywords: CSS, blockComment: ['/*', '*/'], quotes: `"'` },
  json: { keywords: words('true false null'), quotes: '"' },
  html: { keywords: new Set(), blockComment: ['<!--', '-->'], quotes: `"'` },
  text: { keywords: new Set(), quotes: '' },
};

const BY_EXT: Readonly<Record<string, keyof typeof LANGS>> = {
  js: 'c', mjs: 'c', cjs: 'c', jsx: 'c', ts: 'c', mts: 'c', cts: 'c', tsx: 'c', java: 'c', kt: 'c', c: 'c', h: 'c', cc: 'c',
  cpp: 'c', hpp: 'c', cs: 'c', go: 'c', rs: 'c', swift: 'c', scala: 'c', dart: 'c', svelte: 'c', vue: 'c',
  py: 'py', rb: 'py', pl: 'sh', sh: 'sh', bash: 'sh', zsh: 'sh', yml: 'sh', yaml: 'sh', toml: 'sh', ini: 'sh', cfg: 'sh', env: 'sh',
  css: 'css', scss: 'css', less: 'css', json: 'json', html: 'html', xml: 'html', svg: 'html', md: 'text', txt: 'text',
};

export function languageFor(path: string): keyof typeof LANGS {
  const name = path.split(/[\\/]/).pop() ?? '';
  if (name === 'Dockerfile' || name === 'Makefile' || name.startsWith('.')) return 'sh';
  const ext = name.includes('.') ? name.split('.').pop()!.toLowerCase() : '';
  return BY_EXT[ext] ?? 'text';
}

const NUMBER = /^(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?)/;
const WORD = /^[A-Za-z_$][\w$]*/;

export function tokenize(line: string, lang: keyof typeof LANGS): Token[] {
  const l = LANGS[lang] ?? LANGS['text']!;
  if (lang === 'text' || line.length > 2000) return [{ type: 'plain', text: line }];
  const out: Token[] = [];
  let plain = '';
  const flush = () => {
    if (plain) out.push({ type: 'plain', text: plain });
    plain = '';
  };
  let i = 0;
  while (i < line.length) {
    const rest = line.slice(i);
    if (l.lineComment && rest.startsWith(l.lineComment) && (l.lineComment !== '#' || i === 0 || /\s/.test(line[i - 1]!))) {
      flush();
      out.push({ type: 'com', text: rest });
      break;
    }
    if (l.blockComment && rest.startsWith(l.blockComment[0])) {
      const end = rest.indexOf(l.blockComment[1], l.blockComment[0].length);
      const text = end === -1 ? rest : rest.slice(0, end + l.blockComment[1].length);
      flush();
      out.push({ type: 'com', text });
      i += text.length;
      continue;
    }
    const c = line[i]!;
    if (l.quotes.includes(c)) {
      let j = i + 1;
      while (j < line.length && line[j] !== c) j += line[j] === '\\' ? 2 : 1;
      const text = line.slice(i, Math.min(j + 1, line.length));
      flush();
      out.push({ type: 'str', text });
      i += text.length;
      continue;
    }
    const prev = i > 0 ? line[i - 1]! : ' ';
    if (/\d/.test(c) && !/[\w$]/.test(prev)) {
      const m = NUMBER.exec(rest);
      if (m) {
        flush();
        out.push({ type: 'num', text: m[0] });
        i += m[0].length;
        continue;
      }
    }
    if (/[A-Za-z_$]/.test(c) && !/[\w$]/.test(prev)) {
      const w = WORD.exec(rest)![0];
      if (l.keywords.has(w)) {
        flush();
        out.push({ type: 'kw', text: w });
      } else plain += w;
      i += w.length;
      continue;
    }
    plain += c;
    i++;
  }
  flush();
  return out;
}
