// Vectors: the Go note package's documented example (golang.org/x/mod/sumdb/note,
// key "PeterNeumann"), the C2SP spec's example key, and a real signed tree head
// of sum.golang.org verified with Go's published sumdb key.
import { describe, expect, it } from 'vitest';
import {
  formatCheckpoint,
  openNote,
  parseCheckpoint,
  parseNote,
  parseVerifierKey,
  signNote,
  type Checkpoint,
} from '../../src/common/signed-note.ts';
import { sha256 } from '../../src/host/audit/hashing.ts';
import { NoteSigningKey, noteVerifier } from '../../src/host/keychain/note-key.ts';

const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_NOTE = `${PETER_TEXT}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;

const SUMDB_VKEY = 'sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8';
const SUMDB_NOTE =
  'go.sum database tree\n65209736\n5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n' +
  '— sum.golang.org Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz7l/R3cVtYspg3dxXABkGZZKdsQ8=\n';

describe('C2SP signed note', () => {
  it('signs the Go note example byte for byte and derives its key ID', () => {
    const key = NoteSigningKey.fromSignerKeyText(PETER_SKEY);
    expect(key.keyIdHex).toBe('c74f20a3');
    expect(key.verifierKey).toBe(PETER_VKEY);
    expect(signNote(PETER_TEXT, [key])).toBe(PETER_NOTE);
    expect(key.signerKeyText()).toBe(PETER_SKEY);
  });

  it('opens the Go note example with its verifier key', () => {
    const opened = openNote(PETER_NOTE, [noteVerifier(PETER_VKEY)]);
    expect(opened.text).toBe(PETER_TEXT);
    expect(opened.verified.map((s) => [s.name, s.keyId.toString(16)])).toEqual([['PeterNeumann', 'c74f20a3']]);
  });

  it('accepts the published verifier keys whose IDs match and refuses one whose ID does not', () => {
    expect(parseVerifierKey(sha256, 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k').name).toBe('example.com/foo');
    expect(parseVerifierKey(sha256, 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop').keyId).toBe(0xaf0cfe78);
    expect(() => parseVerifierKey(sha256, 'EnochRoot+af0cfe79+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop')).toThrow(/does not match/);
    expect(() => parseVerifierKey(sha256, 'Enoch+Root+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop')).toThrow();
  });

  it("verifies a real sum.golang.org checkpoint with Go's published key and parses its body", () => {
    const opened = openNote(SUMDB_NOTE, [noteVerifier(SUMDB_VKEY)]);
    const cp = parseCheckpoint(opened.text);
    expect(cp.origin).toBe('go.sum database tree');
    expect(cp.size).toBe(65209736);
    expect(Buffer.from(cp.root).toString('base64')).toBe('5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=');
  });

  it('rejects an altered text, an altered signature and a note signed only by unknown keys', () => {
    const v = [noteVerifier(PETER_VKEY)];
    expect(() => openNote(PETER_NOTE.replace('answer', 'answeR'), v)).toThrow(/does not verify/);
    expect(() => openNote(PETER_NOTE.replace('6RyyBw', '6RyyBx'), v)).toThrow(/does not verify/);
    expect(() => openNote(PETER_NOTE, [noteVerifier(SUMDB_VKEY)])).toThrow(/not signed by any trusted key/);
  });

  it.each([
    ['no blank line', PETER_TEXT + '— PeterNeumann AAAAAAAA\n'],
    ['no final newline', PETER_NOTE.slice(0, -1)],
    ['a dash instead of an em dash', PETER_NOTE.replace('—', '-')],
    ['non-canonical base64', PETER_NOTE.replace('AM=', 'AN=')],
    ['a control character', PETER_NOTE.replace('problem,', 'problem,\t')],
    ['a signature blob too short for a key ID', `${PETER_TEXT}\n— PeterNeumann AAAA\n`],
    ['an empty text', '\n\n— PeterNeumann AAAAAAAA\n'],
    ['over 100 signatures', `${PETER_TEXT}\n${'— x AAAAAAAA\n'.repeat(101)}`],
  ])('refuses to parse a note with %s', (_, msg) => {
    expect(() => parseNote(msg)).toThrow();
  });

  it('rejects a note where a trusted key signed badly even if another trusted key signed well', () => {
    const a = NoteSigningKey.generate('a.example');
    const b = NoteSigningKey.generate('b.example');
    const text = 'hello\n';
    const good = signNote(text, [a]);
    const forgedB = signNote('other\n', [b]).split('\n\n')[1]!;
    expect(() => openNote(`${good}${forgedB}`, [a.verifier(), b.verifier()])).toThrow(/b\.example.*does not verify/);
  });

  it('lets a checkpoint signed by an old and a new key verify with either (key rotation)', () => {
    const oldKey = NoteSigningKey.generate('tether-audit-old');
    const newKey = NoteSigningKey.generate('tether-audit-new');
    const note = signNote(formatCheckpoint({ origin: 'tether.example/audit', size: 3, root: new Uint8Array(32).fill(7), extensions: [] }), [oldKey, newKey]);
    expect(openNote(note, [oldKey.verifier()]).unknown.map((s) => s.name)).toEqual(['tether-audit-new']);
    expect(openNote(note, [newKey.verifier()]).verified.map((s) => s.name)).toEqual(['tether-audit-new']);
    expect(openNote(note, [oldKey.verifier(), newKey.verifier()]).verified).toHaveLength(2);
  });

  it('round-trips a checkpoint with extension lines and refuses malformed bodies', () => {
    const cp: Checkpoint = { origin: 'tether.example/audit/abc', size: 1234, root: new Uint8Array(32).map((_, i) => i), extensions: ['time 2025-01-01T00:00:00.000Z'] };
    const text = formatCheckpoint(cp);
    expect(text).toBe('tether.example/audit/abc\n1234\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\ntime 2025-01-01T00:00:00.000Z\n');
    expect(parseCheckpoint(text)).toEqual(cp);
    expect(() => parseCheckpoint('o\n01\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n')).toThrow(/leading zeros/);
    expect(() => parseCheckpoint('o\n1\nAAEC\n')).toThrow(/32 bytes/);
    expect(() => parseCheckpoint('o\n1\n')).toThrow(/origin, a size and a root/);
    expect(() => formatCheckpoint({ ...cp, extensions: [''] })).toThrow(/extension/);
  });
});
