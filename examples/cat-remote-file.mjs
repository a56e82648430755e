#!/usr/bin/env node
// Prints one file of a layer of a remote image without pulling the layer: finds the image's
// SOCI index in the registry, fetches the layer's zTOC, then range-reads only the spans that
// hold the file. Usage (after `pnpm build`):
//   node examples/cat-remote-file.mjs 127.0.0.1:5000/app:1 etc/os-release [--plain-http]
import { parseReference, RegistryClient } from '@soci-ts/oci-referrers';
import { findSociIndex } from '@soci-ts/soci-index';
import { decodeZtoc, extractFileBytes, findFile } from '@soci-ts/ztoc';

const [ref, path] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (!ref || !path) {
  console.error('usage: node examples/cat-remote-file.mjs <image-ref> <path> [--plain-http]');
  process.exit(2);
}
const { registry } = parseReference(ref);
const plainHttp = process.argv.includes('--plain-http') || undefined;
const client = new RegistryClient({ hosts: { [registry]: { plainHttp } } });
const repo = client.repository(ref);
const parsed = parseReference(ref);
const image = await repo.fetchImageManifest(parsed.digest ?? parsed.tag ?? 'latest');
const soci = await findSociIndex(repo, image.descriptor.digest);
if (!soci) throw new Error(`${ref} has no SOCI index: build one with \`soci create\` and \`soci push\``);

// The topmost indexed layer that has the file wins. (This sketch ignores whiteouts and layers
// without a zTOC; `soci cat` and soci-index's MergedView give the container's exact view.)
for (const z of [...soci.index.ztocs].reverse()) {
  const ztoc = decodeZtoc(
    await repo.fetchBlobBytes({ mediaType: 'application/octet-stream', digest: z.digest, size: z.size }),
  );
  if (!hasFile(ztoc, path)) continue;
  const bytes = await extractFileBytes(ztoc, path, (start, end) =>
    repo.fetchBlobRange(z.layerDigest, start, end),
  );
  process.stdout.write(bytes);
  await client.close();
  process.exit(0);
}
console.error(`${path} is in no indexed layer of ${ref}`);
process.exit(1);

function hasFile(ztoc, wanted) {
  try {
    return findFile(ztoc, wanted).type !== 'dir';
  } catch {
    return false;
  }
}
