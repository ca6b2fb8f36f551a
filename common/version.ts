// The tierfs version: what `tierfs --version` prints and what a mount reports to the MDS
// (the status page shows it per mount). Kept equal to package.json's version.
export const TIERFS_VERSION = '0.1.0';
