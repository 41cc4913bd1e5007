#!/usr/bin/env node
// Pickle scan targets (issues 13 and 20): scanning a 1 GiB PyTorch-style archive (stored zip: a
// small archive/data.pkl plus raw tensor members) ≤ 1.5 × sha256 of the same file. The scanner
// reads the central directory and the pickles and skips the storages by seeking; the gate's port
// scans by ranged reads, then hashes the whole object and the blocks the scan read in one read.
// Runs the TypeScript scanner through esbuild's bundle so it measures the shipped code.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, linkSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { crc32 } from 'node:zlib';

const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** A stored zip of `members` members of `size` bytes each plus archive/data.pkl, written once. */
async function ensureArchive(path, members, size) {
  if (existsSync(path) && statSync(path).size > members * size) return path;
  mkdirSync(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  const write = (b) => new Promise((res) => (out.write(b) ? res() : out.once('drain', res)));
  const central = [];
  let offset = 0;
  const add = async (name, data) => {
    const n = Buffer.from(name);
    const crc = crc32(data);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(data.length, 18);
    h.writeUInt32LE(data.length, 22);
    h.writeUInt16LE(n.length, 26);
    central.push({ n, crc, len: data.length, offset });
    await write(h);
    await write(n);
    await write(data);
    offset += 30 + n.length + data.length;
  };
  // protocol-2 pickle of an OrderedDict of tensors, as torch.save writes it
  const pkl = Buffer.concat([
    Buffer.from('\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01', 'latin1'),
    ...Array.from({ length: members }, (_, i) =>
      Buffer.from(
        `X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n(X\x01\x00\x00\x00${i % 10}K\x00K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rtbs`.replace(
          '(X',
          '(X',
        ),
        'latin1',
      ),
    ),
    Buffer.from('.'),
  ]);
  await add('archive/data.pkl', pkl);
  const block = randomBytes(size);
  for (let i = 0; i < members; i++) {
    block.writeUInt32LE(i, 0);
    await add(`archive/data/${i}`, block);
  }
  const cdStart = offset;
  for (const c of central) {
    const h = Buffer.alloc(46);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(20, 6);
    h.writeUInt32LE(c.crc, 16);
    h.writeUInt32LE(c.len, 20);
    h.writeUInt32LE(c.len, 24);
    h.writeUInt16LE(c.n.length, 28);
    h.writeUInt32LE(c.offset, 42);
    await write(h);
    await write(c.n);
    offset += 46 + c.n.length;
  }
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(central.length, 8);
  e.writeUInt16LE(central.length, 10);
  e.writeUInt32LE(offset - cdStart, 12);
  e.writeUInt32LE(cdStart, 16);
  await write(e);
  await new Promise((res) => out.end(res));
  return path;
}

async function bundled(entry, name) {
  const outfile = join(PROJECT, '.bench', name);
  await build({
    entryPoints: [join(PROJECT, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    logLevel: 'warning',
    banner: { js: "import { createRequire as __mgCreateRequire } from 'node:module'; const require = __mgCreateRequire(import.meta.url);" },
  });
  return outfile;
}

export async function run() {
  const path = await ensureArchive(join(PROJECT, '.bench', 'torch-1g.pt'), 64, 16 * 1024 * 1024);
  const { scanArtifactFile, openFileSource } = await import(pathToFileURL(await bundled('src/scan/artifact.ts', 'scan-bundle.mjs')).href);
  const best = async (f) => {
    let t = Infinity;
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      await f();
      t = Math.min(t, performance.now() - s);
    }
    return t;
  };
  const hashMs = await best(async () => {
    const h = createHash('sha256');
    for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c);
    h.digest();
  });
  let findings;
  const scanMs = await best(async () => {
    const src = await openFileSource(path);
    findings = await scanArtifactFile('torch-1g.pt', src, { format: 'pt' });
    await src.close();
  });
  if (findings.length) throw new Error(`benign archive refused: ${findings[0].message}`);

  // What the gate runs: the store port, which hashes the bytes it scans in the same read.
  const { StoreArtifactScanner } = await import(pathToFileURL(await bundled('src/gate/store-scanner.ts', 'scan-port-bundle.mjs')).href);
  const { FileStore } = await import(pathToFileURL(await bundled('src/store/file-store.ts', 'file-store-bundle.mjs')).href);
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c);
  const digest = h.digest('hex');
  const storeRoot = join(PROJECT, '.bench', 'scan-store');
  const key = `bench/sha256/${digest}/model.pt`;
  mkdirSync(join(storeRoot, dirname(key)), { recursive: true });
  if (!existsSync(join(storeRoot, key))) linkSync(path, join(storeRoot, key));
  const store = new FileStore({ scheme: 'file', root: storeRoot, uri: pathToFileURL(storeRoot).href });
  const version = {
    model: 'bench',
    version: 1,
    format: 'pt',
    artifact: { uri: `${pathToFileURL(storeRoot).href}/${key}`, sha256: digest, size: statSync(path).size },
  };
  let port;
  const portMs = await best(async () => {
    port = await new StoreArtifactScanner(store).scanPickles(version, []);
  });
  if (port.findings.length) throw new Error(`benign archive refused by the port: ${port.findings[0].message}`);
  const hashName = 'sha256 of it';
  return [
    {
      name: 'scan 1 GiB torch zip',
      value: scanMs / 1000,
      unit: 's',
      baselineName: hashName,
      baseline: hashMs / 1000,
      target: 1.5,
      pass: scanMs <= 1.5 * hashMs,
    },
    {
      name: "gate's scan port on it (ranged scan + sha256, file:// store)",
      value: portMs / 1000,
      unit: 's',
      baselineName: hashName,
      baseline: hashMs / 1000,
      target: 1.5,
      pass: portMs <= 1.5 * hashMs,
    },
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) console.log(await run());
