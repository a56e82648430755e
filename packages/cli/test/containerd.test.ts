import { pushLayout, startRegistry, type TestRegistry } from '@soci-ts/testing';
import { startContainerd, type TestContainerd } from '@soci-ts/testing/containerd';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtureImage, type FixtureImage } from '../../soci-index/test/fixture.js';
import { soci, sociOk, tempRoot } from './helpers.js';

const BUILD = ['--min-layer-size', '65536', '--span-size', '65536', '--quiet', '--json'];

let registry: TestRegistry;
let ctd: TestContainerd;
let image: FixtureImage;
let ref: string;

beforeAll(async () => {
  [registry, image, ctd] = await Promise.all([
    startRegistry(),
    buildFixtureImage(),
    startContainerd({ snapshotterSocket: '/nonexistent/unused.sock', namespace: 'soci-cli' }),
  ]);
  ref = await pushLayout({ layout: image.layout, tag: image.tag } as never, {
    host: registry.host,
    repository: 'ctd',
  });
  await ctd.ctr(['image', 'pull', '--plain-http', ref]);
});
afterAll(async () => {
  await Promise.all([ctd?.stop(), registry?.stop(), image?.cleanup()]);
});

describe('--containerd-address', () => {
  it("builds from containerd's content store the same index as from the registry", async () => {
    const [fromCtd] = JSON.parse(
      (
        await sociOk(
          'create',
          ref,
          '--containerd-address',
          ctd.address,
          '-n',
          'soci-cli',
          '--root',
          await tempRoot(),
          ...BUILD,
        )
      ).stdout,
    );
    const [fromRegistry] = JSON.parse(
      (await sociOk('create', ref, '--root', await tempRoot(), ...BUILD)).stdout,
    );
    expect(fromCtd.digest).toBe(fromRegistry.digest);
    expect(fromCtd.imageManifestDigest).toBe(image.manifestDigest);
  });

  it('says how to get an image containerd does not have', async () => {
    const r = await soci(
      'create',
      `${registry.host}/absent:1`,
      '--containerd-address',
      ctd.address,
      '-n',
      'soci-cli',
      '--root',
      await tempRoot(),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has no image .*absent:1; pull it first/);
  });
});
