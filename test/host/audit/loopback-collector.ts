// A SIEM collector on 127.0.0.1 for shipping tests, in the generic JSON batch
// format of HttpCollectorSink. It keeps what it accepted across restarts (as a
// real collector's storage would), drops duplicates by event uid, and checks
// what a careful collector can check: each event's leaf hash against its record
// line, each checkpoint's signature, its consistency proof from the last one
// it accepted, and that the leaves it holds hash to the signed root.
//
// Faults, chosen per request: answer 503, stall (never answer), or store the
// batch and then drop the connection without answering (the shipper must retry
// and the duplicate must be dropped).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { MerkleTree, equalHashes, verifyConsistency } from '../../../src/common/merkle.ts';
import { decodeBase64, openNote, parseCheckpoint, type NoteVerifier } from '../../../src/common/signed-note.ts';
import { leafHashOfBytes, merkleHasher, toHex } from '../../../src/host/audit/hashing.ts';

export interface Faults {
  fail: number;
  stall: number;
  dropAfterStore: number;
}

interface OriginState {
  tree: MerkleTree;
  lastSeq: number | undefined;
  accepted: { size: number; root: Uint8Array } | undefined;
}

export class LoopbackCollector {
  readonly token: string;
  private readonly verifiers: NoteVerifier[];
  faults: Faults = { fail: 0, stall: 0, dropAfterStore: 0 };
  /** seq → count received (dedup is by uid; this also shows duplicates arrived). */
  readonly seqs = new Map<number, number>();
  readonly uids = new Set<string>();
  readonly origins = new Map<string, OriginState>();
  duplicates = 0;
  requests = 0;
  faultsInjected = { fail: 0, stall: 0, dropAfterStore: 0 };
  checkpointsAccepted = 0;
  readonly problems: string[] = [];
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  port = 0;

  constructor(token: string, verifiers: NoteVerifier[]) {
    this.token = token;
    this.verifiers = verifiers;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/ingest`;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Goes away: stops listening and cuts every open connection (in-flight requests get no answer). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async restart(downMs: number): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      res.writeHead(401).end();
      return;
    }
    const r = Math.random();
    if (r < this.faults.fail) {
      this.faultsInjected.fail++;
      res.writeHead(503).end('try later');
      return;
    }
    if (r < this.faults.fail + this.faults.stall) {
      this.faultsInjected.stall++;
      return; // never answers; the client must give up and retry
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    const status = body.type === 'tether.audit.records' ? this.takeRecords(body) : body.type === 'tether.audit.checkpoint' ? this.takeCheckpoint(body) : 400;
    if (status === 200 && r < this.faults.fail + this.faults.stall + this.faults.dropAfterStore) {
      this.faultsInjected.dropAfterStore++;
      req.socket.destroy(); // stored, but the shipper never hears so
      return;
    }
    res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
  }

  private origin(name: string): OriginState {
    let o = this.origins.get(name);
    if (!o) {
      o = { tree: new MerkleTree(merkleHasher), lastSeq: undefined, accepted: undefined };
      this.origins.set(name, o);
    }
    return o;
  }

  private takeRecords(body: Record<string, unknown>): number {
    const o = this.origin(String(body.origin));
    for (const e of body.events as Array<{ metadata: { uid: string }; unmapped: { tether: { seq: number; leaf_hash: string; record?: string } } }>) {
      const t = e.unmapped.tether;
      this.seqs.set(t.seq, (this.seqs.get(t.seq) ?? 0) + 1);
      if (this.uids.has(e.metadata.uid)) {
        this.duplicates++;
        continue;
      }
      if (t.record !== undefined && toHex(leafHashOfBytes(Buffer.from(t.record))) !== t.leaf_hash) this.problems.push(`leaf hash of ${e.metadata.uid} does not match its record`);
      // Events of one origin arrive in order; a gap means the shipper skipped something.
      if (o.lastSeq !== undefined && t.seq !== o.lastSeq + 1) this.problems.push(`gap in ${String(body.origin)}: seq ${t.seq} after ${o.lastSeq}`);
      o.lastSeq = t.seq;
      this.uids.add(e.metadata.uid);
      o.tree.append(Buffer.from(t.leaf_hash, 'hex'));
    }
    return 200;
  }

  private takeCheckpoint(body: Record<string, unknown>): number {
    const name = String(body.origin);
    const o = this.origin(name);
    let cp;
    try {
      cp = parseCheckpoint(openNote(String(body.checkpoint), this.verifiers).text);
    } catch (e) {
      this.problems.push(`checkpoint signature: ${(e as Error).message}`);
      return 422;
    }
    if (cp.origin !== name) this.problems.push('checkpoint origin mismatch');
    if (o.accepted && cp.size < o.accepted.size) {
      // an older checkpoint sent again after a retry: already have a newer one
      return 200;
    }
    if (cp.size > o.tree.size) {
      this.problems.push(`checkpoint of size ${cp.size} arrived before its leaves (have ${o.tree.size})`);
      return 422;
    }
    const c = body.consistency as { from_size: number; proof: string[] } | null;
    if (o.accepted && o.accepted.size > 0 && o.accepted.size !== cp.size) {
      if (!c || c.from_size !== o.accepted.size || !verifyConsistency(merkleHasher, o.accepted.size, cp.size, o.accepted.root, cp.root, c.proof.map(decodeBase64))) {
        this.problems.push(`consistency proof from ${o.accepted.size} to ${cp.size} does not verify`);
        return 422;
      }
    }
    // The leaves we hold must hash to the signed root.
    if (!equalHashes(o.tree.root(cp.size), cp.root)) {
      this.problems.push(`received leaves do not hash to the root of checkpoint ${cp.size}`);
      return 422;
    }
    o.accepted = { size: cp.size, root: cp.root };
    this.checkpointsAccepted++;
    return 200;
  }
}
