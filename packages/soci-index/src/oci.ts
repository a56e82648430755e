/** OCI shapes and media types, from @soci-ts/oci-referrers under the names this package uses. */
import { MediaType } from '@soci-ts/oci-referrers';

export type { Descriptor, ImageIndex, ImageManifest, Platform } from '@soci-ts/oci-referrers';
export { isIndexMediaType, isManifestMediaType } from '@soci-ts/oci-referrers';

export const OCI_MANIFEST = MediaType.OciManifest;
export const OCI_INDEX = MediaType.OciIndex;
export const OCI_CONFIG = MediaType.OciConfig;
export const OCI_LAYER_TAR = MediaType.OciLayer;
export const OCI_LAYER_GZIP = MediaType.OciLayerGzip;
export const OCI_LAYER_NONDIST_GZIP = MediaType.OciLayerNondistributableGzip;
export const DOCKER_MANIFEST = MediaType.DockerManifest;
export const DOCKER_MANIFEST_LIST = MediaType.DockerManifestList;
export const DOCKER_CONFIG = MediaType.DockerConfig;
export const DOCKER_LAYER_GZIP = MediaType.DockerLayerGzip;
export const DOCKER_LAYER_TAR = MediaType.DockerLayer;
export const DOCKER_FOREIGN_LAYER_GZIP = MediaType.DockerForeignLayerGzip;
