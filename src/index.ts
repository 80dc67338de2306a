/**
 * boxsig as a library: the same operations as the CLI, with typed results and
 * one error class (`BoxsigError`) carrying the stable refusal `code`.
 */
export { BoxsigError, REFUSAL_CODES, isRefusalCode, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILURE } from './errors.js';
export type { RefusalCode, ErrorCode } from './errors.js';
export { signBox, type SignOptions, type SignResult } from './box/sign.js';
export { verifyBox, inspectBox, type VerifyOptions, type VerifyResult, type InspectResult } from './box/verify.js';
export { stripBox, type StripResult } from './box/strip.js';
export { generateKey, loadSecretKey, readKeyMaterial, fingerprintOf, type GenerateOptions } from './keys/keys.js';
export { signerFromKey, signerFromGpg, type ManifestSigner } from './keys/signer.js';
export { parseManifest, serializeManifest, MANIFEST_FORMAT, type Manifest, type ManifestFile, type BoxIdentity } from './manifest/manifest.js';
export { TrustStore, defaultHome, type TrustState, type TrustRecord } from './trust/store.js';
export { loadLayers } from './policy/load.js';
export { resolvePolicy, validateConfig, type ConfigDoc, type ConfigLayer, type BoxPolicy, type ResolvedPolicy } from './policy/config.js';
export { LIMITS } from './archive/limits.js';
export { listTrust, pinTrust, forgetTrust, acceptTrust, type TrustListing, type ForgetResult, type AcceptResult } from './trust/manage.js';
