import { libraryBuild } from '../../tsup.shared';

export default libraryBuild([
  'src/index.ts',
  'src/bin.ts',
  'src/fuse-keeper-main.ts',
  'src/unpack-worker.ts',
]);
