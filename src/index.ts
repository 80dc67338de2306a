/**
 * boxsig as a library: the same operations as the CLI, with typed results and
 * one error class (`BoxsigError`) carrying the stable `code`. The CLI
 * (src/cli/) is a thin mapping of options onto these functions.
 */
export { BoxsigError, REFUSAL_CODES, isRefusal, isRefusalCode, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_FAILURE } from './errors.js';
export type { RefusalCode, FailureCode, ErrorCode } from './errors.js';
// boxes: sign, verify, inspect, strip
export { signBox, type SignOptions, type SignResult } from './box/sign.js';
export { verifyBox, verifyDir, inspectBox, type VerifyOptions, type VerifyDirOptions, type VerifyResult, type InspectResult } from './box/verify.js';
export { stripBox, type StripResult } from './box/strip.js';
export { openBox, boxFileSize } from './box/open.js';
export { loadSigners, type SignerOptions } from './box/signers.js';
// Vagrant: add, verify what is installed, repackage
export { addBox, type AddOptions, type AddResult } from './vagrant/add.js';
export { verifyInstalled, type VerifyInstalledOptions, type VerifyInstalledResult, type InstalledVerdict } from './vagrant/installed.js';
export { repackageBox, type RepackageOptions, type RepackageResult, type BoxChange } from './vagrant/repackage.js';
// keys
export { generateKey, loadSecretKey, unlockSecretKey, readKeyMaterial, type GenerateOptions } from './keys/keys.js';
export { fingerprintOf } from './keys/pgp.js';
export { generateKeyFiles, addUserIdToKeyFile, type GeneratedKeyFiles, type AddUidResult } from './keys/generate.js';
export { passphraseFrom, passphraseOf, readPassphraseFile, type Passphrase, type PassphraseOptions } from './keys/passphrase.js';
export { signerFromKey, signerFromGpg, type ManifestSigner } from './keys/signer.js';
export { certifyForScope } from './keys/certify.js';
export { makeRevocationCertificate, holdsRevocation, type RevocationRequest, type RevocationCertificate } from './keys/revoke.js';
// manifests
export { parseManifest, serializeManifest, MANIFEST_FORMAT, type Manifest, type ManifestFile, type BoxIdentity } from './manifest/manifest.js';
// trust and policy
export { TrustStore, defaultHome, type TrustState } from './trust/store.js';
export type { TrustRecord } from './trust/record-files.js';
export { findKey } from './trust/find.js';
export { listTrust, pinTrust, forgetTrust, acceptTrust, type TrustListing, type ForgetResult, type AcceptResult } from './trust/manage.js';
export { loadLayers } from './policy/load.js';
export { resolvePolicy, validateConfig, type ConfigDoc, type ConfigLayer, type BoxPolicy, type ResolvedPolicy } from './policy/config.js';
export { LIMITS } from './shared/limits.js';
// the registry client
export { publishBox, type PublishOptions, type PublishResult } from './registry/client.js';
