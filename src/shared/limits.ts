/**
 * Resource limits. Every one of them is documented in docs/SECURITY.md;
 * change both together.
 */
export const LIMITS = {
  /** Longest accepted path inside a box, in bytes. */
  maxPathBytes: 1024,
  /** Longest accepted path component, in bytes. */
  maxComponentBytes: 255,
  /** Deepest accepted nesting of directories. */
  maxPathDepth: 32,
  /** Most entries (files and directories) in one box. */
  maxEntries: 10_000,
  /** Largest pax extended header or GNU long-name record. */
  maxMetaHeaderBytes: 64 * 1024,
  /**
   * Most extended headers (pax, pax global, GNU long name) in front of one
   * entry. Repeated pax global headers are otherwise legal: without this
   * bound, a stream of them would be inflated without limit before any entry
   * (and any signature check) is reached.
   */
  maxExtendedHeadersPerEntry: 16,
  /** Largest `.boxsig/manifest.json`. */
  maxManifestBytes: 4 * 1024 * 1024,
  /** Largest signature or key file inside `.boxsig/`. */
  maxBoxsigFileBytes: 1024 * 1024,
  /** Largest total size of the leading `.boxsig/` entries. */
  maxPrefixBytes: 16 * 1024 * 1024,
  /** Most signatures (and keys) in one box. */
  maxSigners: 32,
  /** Largest `metadata.json`, which boxsig parses. */
  maxMetadataBytes: 1024 * 1024,
  /** Zero bytes accepted after the end-of-archive marker (tar pads to its record size). */
  maxTrailingZeroBytes: 1024 * 1024,
  /** Decompressed size accepted when no signed manifest bounds it (unsigned boxes): 256 GiB. */
  maxUnboundedBytes: 256 * 1024 ** 3,
  /** Deepest JSON nesting accepted anywhere (the manifest needs 3). */
  maxJsonDepth: 32,
  /** Largest catalog (metadata JSON) document. */
  maxCatalogBytes: 16 * 1024 * 1024,
};

/** Bytes per read and per inflated chunk: large chunks make core zlib ~4x faster. */
export const CHUNK_SIZE = 1024 * 1024;
