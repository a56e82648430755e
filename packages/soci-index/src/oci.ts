/**
 * OCI shapes and media types: the types come from @soci-ts/oci-referrers; the few media
 * types it does not name (Docker tar/foreign layers, non-distributable OCI layers) are here.
 */
import { MediaType } from '@soci-ts/oci-referrers';

export type { Descriptor, ImageIndex, ImageManifest, Platform } from '@soci-ts/oci-referrers';
export { isIndexMediaType, isManifestMediaType } from '@soci-ts/oci-referrers';

export const OCI_MANIFEST = MediaType.OciManifest;
export const OCI_INDEX = MediaType.OciIndex;
export const OCI_CONFIG = MediaType.OciConfig;
export const OCI_LAYER_TAR = MediaType.OciLayer;
export const OCI_LAYER_GZIP = MediaType.OciLayerGzip;
export const OCI_LAYER_NONDIST_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip';
export const DOCKER_MANIFEST = MediaType.DockerManifest;
export const DOCKER_MANIFEST_LIST = MediaType.DockerManifestList;
export const DOCKER_CONFIG = MediaType.DockerConfig;
export const DOCKER_LAYER_GZIP = MediaType.DockerLayerGzip;
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
export const DOCKER_FOREIGN_LAYER_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
